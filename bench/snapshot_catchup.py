#!/usr/bin/env python3
"""A large state (1 GiB by default) on a 3-node uraftd cluster: how the loop fares while the
leader snapshots it, and how a follower restarted on an empty data directory catches up.

1. Loads --gib of state through the leader (pipelined SETs of --value-bytes values).
2. Snapshot stall: while a probe client writes SET one at a time through the leader (and
   PINGs it), a loader writes more until the leader takes a snapshot of the whole state. It
   reports the probe's p50/p99/max latency during the snapshot, the leader's fork time
   (INFO snapshot_fork_usec) and, as the baseline measured in the same run, the probe's
   latency while the loader writes with no snapshot running.
3. Catch-up: a follower is stopped, its data directory removed, and it is started again; it
   reports the time until it applies the leader's commit index, its peak RSS (VmHWM) against
   the state's size, the leader's peak RSS, and whether the leader or its term changed.

    bench/snapshot_catchup.py build/release/kv/uraftd [--gib 1] [--json out.json]
        [--extra=--no-snapshot-in-child]   (the thread mode, where writes wait)
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "kv"))
import e2e_lib  # noqa: E402
from leader_stop import machine, percentile  # noqa: E402

BATCH = 64  # Commands per pipelined batch.


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def load(port, prefix, keys, value):
    c = e2e_lib.Client(port, timeout=60)
    for start in range(0, keys, BATCH):
        n = min(BATCH, keys - start)
        c.send_raw(b"".join(e2e_lib.Client.encode("SET", f"{prefix}{start + i}", value)
                            for i in range(n)))
        for _ in range(n):
            reply = c.read_reply()
            assert reply == b"OK", reply
    c.close()


def probe(port, stop, samples):
    """SET then PING through `port` until `stop`, one at a time: (time, set_ms, ping_ms)."""
    c = e2e_lib.Client(port, timeout=30)
    n = 0
    while not stop.is_set():
        t0 = time.monotonic()
        c.call("SET", "probe", str(n))
        t1 = time.monotonic()
        c.call("PING")
        t2 = time.monotonic()
        samples.append((t0, 1000 * (t1 - t0), 1000 * (t2 - t1)))
        n += 1
        time.sleep(0.001)
    c.close()


def summary(values):
    if not values:
        return {"p50_ms": 0, "p99_ms": 0, "p999_ms": 0, "max_ms": 0, "samples": 0}
    return {"p50_ms": round(statistics.median(values), 3), "p99_ms": round(percentile(values, 99), 3),
            "p999_ms": round(percentile(values, 99.9), 3), "max_ms": round(max(values), 3),
            "samples": len(values)}


def probed(port, during):
    """Runs `during()` with the probe going; returns its SET and PING latencies meanwhile."""
    stop, samples = threading.Event(), []
    t = threading.Thread(target=probe, args=(port, stop, samples), daemon=True)
    t.start()
    during()
    stop.set()
    t.join()
    return summary([s[1] for s in samples]), summary([s[2] for s in samples])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("uraftd")
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--value-bytes", type=int, default=16384)
    ap.add_argument("--snapshot-log-bytes", type=int, default=64 << 20)
    ap.add_argument("--extra", action="append", default=[])
    ap.add_argument("--catchup-timeout", type=float, default=600)
    ap.add_argument("--json")
    args = ap.parse_args()
    uraftd = os.path.abspath(args.uraftd)
    value = "v" * args.value_bytes
    keys = int(args.gib * (1 << 30) / args.value_bytes)
    extra = ["--snapshot-log-bytes", str(args.snapshot_log_bytes)] + args.extra
    result = {"machine": machine(), "gib": args.gib, "value_bytes": args.value_bytes, "keys": keys,
              "extra": args.extra}
    with e2e_lib.running_cluster(uraftd, extra=extra) as c:
        c.start_all()
        leader = c.leader()
        lp = c.client_ports[leader]
        t0 = time.monotonic()
        load(lp, "k", keys, value)
        result["load_s"] = round(time.monotonic() - t0, 1)
        print(f"loaded {keys} keys of {args.value_bytes} bytes in {result['load_s']} s")

        # Baseline: the loader alone, stopped before the leader's next snapshot is due.
        extra_keys = max(BATCH, int(args.snapshot_log_bytes / args.value_bytes / 4))
        base_set, base_ping = probed(lp, lambda: load(lp, "b", extra_keys, value))
        # A snapshot of the whole state on the leader, with the loader going until it is in.
        taken = int(e2e_lib.info(lp, "stats")["snapshots_taken"])

        def until_snapshot():
            round_ = 0
            while int(e2e_lib.info(lp, "stats")["snapshots_taken"]) <= taken:
                load(lp, f"s{round_}-", extra_keys, value)
                round_ += 1
        snap_set, snap_ping = probed(lp, until_snapshot)
        stats = e2e_lib.info(lp, "stats")
        result["snapshot"] = {"probe_set": snap_set, "probe_ping": snap_ping,
                              "baseline_set": base_set, "baseline_ping": base_ping,
                              "fork_usec": int(stats.get("snapshot_fork_usec", -1)),
                              "set_max_over_baseline": round(snap_set["max_ms"] / base_set["max_ms"], 2)}
        print(f"snapshot of the state on the leader: probe SET max {snap_set['max_ms']} ms "
              f"(p99 {snap_set['p99_ms']}), PING max {snap_ping['max_ms']} ms; baseline SET max "
              f"{base_set['max_ms']} ms; fork {stats.get('snapshot_fork_usec', '?')} us")

        # Catch-up of a follower on an empty data directory.
        raft = e2e_lib.info(lp)
        term, commit = raft["term"], int(raft["commit_index"])
        wiped = (leader + 1) % c.n
        c.stop(wiped)
        shutil.rmtree(os.path.join(c.dir, f"node{wiped}"))
        t0 = time.monotonic()
        c.start(wiped)
        pid = c.procs[wiped].pid
        try:
            e2e_lib.wait_until("the wiped follower to catch up",
                               lambda: int(e2e_lib.info(c.client_ports[wiped])["last_applied"]) >= commit,
                               timeout=args.catchup_timeout, interval=0.1)
        except AssertionError:
            result["catchup"] = {"caught_up": False, "waited_s": args.catchup_timeout}
            print(f"the follower on an empty data dir did not catch up in {args.catchup_timeout} s")
            return finish(args, result)
        catchup = time.monotonic() - t0
        data_bytes = keys * args.value_bytes
        after = e2e_lib.info(lp)
        result["catchup"] = {
            "caught_up": True,
            "seconds": round(catchup, 2),
            "follower_peak_rss_mib": round(vm_kib(pid, "VmHWM") / 1024, 1),
            "leader_peak_rss_mib": round(vm_kib(c.procs[leader].pid, "VmHWM") / 1024, 1),
            "state_mib": round(data_bytes / (1 << 20), 1),
            "follower_peak_rss_over_state": round(vm_kib(pid, "VmHWM") * 1024 / data_bytes, 2),
            "leader_changed": c.leader() != leader or after["term"] != term,
            "mib_per_s": round(data_bytes / (1 << 20) / catchup, 1),
        }
        r = result["catchup"]
        print(f"follower on an empty data dir caught up in {r['seconds']} s ({r['mib_per_s']} MiB/s); "
              f"peak RSS {r['follower_peak_rss_mib']} MiB for {r['state_mib']} MiB of state "
              f"({r['follower_peak_rss_over_state']}x); leader peak RSS {r['leader_peak_rss_mib']} MiB; "
              f"leader changed: {r['leader_changed']}")
    finish(args, result)


def finish(args, result):
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
