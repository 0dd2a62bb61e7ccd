#!/usr/bin/env python3
"""How long a 3-node uraftd cluster takes no writes when its leader is stopped (SIGTERM),
with leadership transfer on stop (the default) and without it (--no-transfer-on-stop: the
others wait an election timeout, then elect), in the same run, alternating.

One client writes SET through a follower that stays up, one request at a time, retrying at
once on an error; the unavailability of a stop is the longest gap between two acknowledged
writes from the SIGTERM on. Reports each mode's p50/p99/max over the repeats and the ratio
of the medians, as a table and, with --json, as JSON with the machine block.

    bench/leader_stop.py build/release/kv/uraftd [--repeat 10] [--json out.json]
"""

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "kv"))
import e2e_lib  # noqa: E402


def writer(port, stop, acks, errors):
    """SETs through `port` until `stop`; appends the time of every acknowledged write, and
    the text of every error reply."""
    client = None
    n = 0
    while not stop.is_set():
        try:
            if client is None:
                client = e2e_lib.Client(port, timeout=5)
            client.call("SET", "k", str(n))
            acks.append(time.monotonic())
            n += 1
        except e2e_lib.RespError as e:
            errors.append(str(e))  # TRYAGAIN while there is no leader: ask again at once.
        except OSError:
            if client is not None:
                client.close()
            client = None
            time.sleep(0.001)


def one_stop(uraftd, transfer):
    """The gap, in ms, in acknowledged writes around one SIGTERM of the leader, and how many
    error replies the writer got."""
    extra = [] if transfer else ["--no-transfer-on-stop"]
    with e2e_lib.running_cluster(uraftd, extra=extra) as c:
        c.start_all()
        leader = c.leader()
        follower = (leader + 1) % c.n
        stop, acks, errors = threading.Event(), [], []
        t = threading.Thread(target=writer, args=(c.client_ports[follower], stop, acks, errors),
                             daemon=True)
        t.start()
        e2e_lib.wait_until("writes to flow", lambda: len(acks) >= 200, timeout=20)
        stopped_at = time.monotonic()
        c.stop(leader)
        e2e_lib.wait_until("writes after the stop",
                           lambda: acks and acks[-1] > stopped_at + 0.2, timeout=20)
        stop.set()
        t.join()
    times = [stopped_at] + [a for a in acks if a > stopped_at]
    return 1000 * max(b - a for a, b in zip(times, times[1:])), len(errors)


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "arch": platform.machine()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("uraftd")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--json")
    args = ap.parse_args()
    uraftd = os.path.abspath(args.uraftd)
    gaps = {"transfer": [], "election": []}
    errors = {"transfer": 0, "election": 0}
    for _ in range(args.repeat):  # Alternating, so both modes see the machine's moods.
        for mode in gaps:
            gap, errs = one_stop(uraftd, mode == "transfer")
            gaps[mode].append(gap)
            errors[mode] += errs
    rows = {}
    print(f"{'leader stop':<12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}  runs")
    for mode, values in gaps.items():
        rows[mode] = {"p50_ms": statistics.median(values), "p99_ms": percentile(values, 99),
                      "max_ms": max(values), "error_replies": errors[mode],
                      "runs_ms": [round(v, 2) for v in values]}
        r = rows[mode]
        print(f"{mode:<12} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['max_ms']:8.1f} "
              f"{errors[mode]:7d}  {len(values)}")
    ratio = rows["election"]["p50_ms"] / rows["transfer"]["p50_ms"]
    print(f"write unavailability, election / transfer (medians): {ratio:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "repeat": args.repeat, "modes": rows,
                       "election_over_transfer": ratio}, f, indent=2)


if __name__ == "__main__":
    main()
