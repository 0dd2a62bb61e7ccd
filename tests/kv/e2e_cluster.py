#!/usr/bin/env python3
"""uraftd end to end, as a cluster: real processes on free ports, real clients (redis-cli,
redis-benchmark, a plain-socket RESP client). Writes and reads through every node, failover
after kill -9 of the leader without losing acknowledged writes, a restarted node catching up
(from its own snapshot and through InstallSnapshot), a full stop and start, and a benchmark
run without errors. Usage: e2e_cluster.py path/to/uraftd [case ...]"""

import contextlib
import os
import re
import shutil
import subprocess
import time

from e2e_lib import (Client, RespError, case, info, main, redis_cli, running_cluster,
                     wait_until)


def write_retrying(port, *args, timeout=10.0):
    """Sends one command until it is not answered -TRYAGAIN; returns the reply."""
    deadline = time.monotonic() + timeout
    while True:
        c = Client(port)
        try:
            return c.call(*args)
        except RespError as e:
            if not str(e).startswith("TRYAGAIN") or time.monotonic() > deadline:
                raise
        finally:
            c.close()
        time.sleep(0.05)


def cli_retrying(port, *args, timeout=10.0):
    """redis-cli, again while the node answers -TRYAGAIN (it has not heard of a leader yet)."""
    deadline = time.monotonic() + timeout
    while True:
        out = redis_cli(port, *args)
        if not out.startswith("TRYAGAIN") or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def set_pipelined(client, keys, value, batch=1000):
    """SET every key to `value`, `batch` commands per pipeline; each must be answered OK."""
    for start in range(0, len(keys), batch):
        part = keys[start:start + batch]
        client.send_raw(b"".join(Client.encode("SET", k, value) for k in part))
        for _ in part:
            assert client.read_reply() == b"OK"


@contextlib.contextmanager
def snapshotting_cluster(uraftd, snapshot_log_bytes):
    """A running cluster that snapshots every `snapshot_log_bytes`: (cluster, the leader, a
    follower, a client of the leader)."""
    with running_cluster(uraftd, extra=["--snapshot-log-bytes", str(snapshot_log_bytes)]) as c:
        c.start_all()
        leader = c.leader()
        cl = Client(c.client_ports[leader])
        yield c, leader, (leader + 1) % c.n, cl
        cl.close()


def wait_applied_equal(cluster, nodes, timeout=15.0):
    """Waits until every node in `nodes` reports the same last_applied as the leader's
    commit index, and returns it."""
    def equal():
        values = [int(info(cluster.client_ports[i])["last_applied"]) for i in nodes]
        return values[0] if len(set(values)) == 1 and values[0] > 0 else None
    return wait_until(f"nodes {nodes} to apply the same index", equal, timeout)


@case
def writes_and_reads_through_every_node(uraftd):
    # Goal: SET/GET/APPEND/INCR work through any node (followers forward to the leader) and
    # every node reads what any other node wrote.
    with running_cluster(uraftd) as c:
        c.start_all()
        c.leader()
        for i, port in enumerate(c.client_ports):
            assert redis_cli(port, "SET", f"k{i}", f"v{i}") == "OK"
            assert redis_cli(port, "APPEND", f"k{i}", "-x") == str(len(f"v{i}-x"))
            assert redis_cli(port, "INCR", "counter") == str(11 * i + 1)
            assert redis_cli(port, "INCRBY", "counter", "10") == str(11 * (i + 1))
        for port in c.client_ports:
            for i in range(c.n):
                assert redis_cli(port, "GET", f"k{i}") == f"v{i}-x"
        total = int(redis_cli(c.client_ports[0], "GET", "counter"))
        assert total == 33, total
        for port in c.client_ports:
            assert redis_cli(port, "GET", "counter") == str(total)
            assert redis_cli(port, "DBSIZE") == "4"
        # Pipelined commands through a follower: one job, replies in order.
        follower = next(i for i in range(c.n) if info(c.client_ports[i])["role"] != "leader")
        cl = Client(c.client_ports[follower])
        cl.send_raw(b"".join(Client.encode(*cmd) for cmd in
                             [("SET", "p", "1"), ("PING",), ("INCR", "p"), ("GET", "p"),
                              ("ECHO", "e"), ("EXISTS", "p", "nope")]))
        replies = [cl.read_reply() for _ in range(6)]
        cl.close()
        assert replies == [b"OK", b"PONG", 2, b"2", b"e", 1], replies


@case
def leader_failover_keeps_acknowledged_writes(uraftd):
    # Goal: kill -9 the leader; a new leader serves writes within 3 s, no acknowledged write is
    # lost, and the old leader, restarted, catches up to the same applied index.
    with running_cluster(uraftd) as c:
        c.start_all()
        old = c.leader()
        acked = {}
        cl = Client(c.client_ports[old])
        for k in range(300):
            assert cl.call("SET", f"key{k}", f"value{k}") == b"OK"
            acked[f"key{k}"] = f"value{k}"
        cl.close()
        c.kill(old)
        killed_at = time.monotonic()
        survivor = (old + 1) % c.n
        assert write_retrying(c.client_ports[survivor], "SET", "after", "failover",
                              timeout=10) == b"OK"
        failover = time.monotonic() - killed_at
        assert failover < 3.0, f"a new leader took {failover:.2f} s to serve a write"
        new = c.leader()
        assert new != old
        cl = Client(c.client_ports[survivor])
        for k, v in acked.items():
            assert cl.call("GET", k) == v.encode(), k
        cl.close()
        c.start(old)
        wait_applied_equal(c, list(range(c.n)))
        assert cli_retrying(c.client_ports[old], "GET", "after") == "failover"
        print(f"     failover: a write succeeded {failover:.2f} s after kill -9 of the leader")


@case
def full_stop_and_start_keeps_data(uraftd):
    # Goal: stop every node (SIGTERM) and start them all again: the data is all there, from
    # the WAL and the snapshots each node took (the threshold is small to force some).
    with running_cluster(uraftd, extra=["--snapshot-log-bytes", "20000"]) as c:
        c.start_all()
        leader = c.leader()
        cl = Client(c.client_ports[leader])
        set_pipelined(cl, [f"s{k}" for k in range(1000)], "x" * 100)
        assert cl.call("INCRBY", "n", 41) == 41
        cl.close()
        applied = wait_applied_equal(c, list(range(c.n)))
        taken = sum(int(info(p, "stats")["snapshots_taken"]) for p in c.client_ports)
        assert taken > 0, "no node took a snapshot"
        for i in range(c.n):
            c.stop(i)
        c.start_all()
        restored = [int(info(p, "stats")["snapshots_restored"]) for p in c.client_ports]
        assert all(r >= 1 for r in restored), restored
        c.leader()
        for port in c.client_ports:
            assert cli_retrying(port, "DBSIZE") == "1001"
            assert cli_retrying(port, "GET", "s999") == "x" * 100
        assert cli_retrying(c.client_ports[0], "INCR", "n") == "42"
        assert wait_applied_equal(c, list(range(c.n))) > applied


@case
def lagging_follower_catches_up_through_a_snapshot(uraftd):
    # Goal: a follower that was down while the log moved past several snapshots is sent one
    # (InstallSnapshot), restores its store from it and applies the same index as the rest.
    with snapshotting_cluster(uraftd, 50000) as (c, leader, lagging, cl):
        c.stop(lagging)
        set_pipelined(cl, [f"r{k}" for k in range(2000)], "y" * 200, batch=400)
        assert int(info(c.client_ports[leader])["snapshot_index"]) > 0
        c.start(lagging)
        wait_applied_equal(c, list(range(c.n)))
        stats = info(c.client_ports[lagging], "stats")
        assert int(stats["snapshots_restored"]) >= 1, stats
        with open(c.logs[lagging]) as f:
            assert "installed snapshot" in f.read()
        ks = info(c.client_ports[lagging], "keyspace")
        assert ks.get("db0", "").startswith("keys=2000,"), ks


@case
def follower_with_an_empty_data_dir_catches_up_in_many_chunks(uraftd):
    # Goal: a follower whose data directory was wiped gets a snapshot many chunks long (the
    # leader's file, streamed 1 MiB at a time into the follower's), restores it, and applies
    # the same index, with writes going on meanwhile and no election on the way. The leader
    # took its snapshots in a child process.
    with snapshotting_cluster(uraftd, 2000000) as (c, leader, wiped, cl):
        set_pipelined(cl, [f"w{k}" for k in range(3000)], "z" * 8192, batch=500)  # 24 MiB.
        wait_applied_equal(c, list(range(c.n)))
        term = info(c.client_ports[leader])["term"]
        c.stop(wiped)
        shutil.rmtree(os.path.join(c.dir, f"node{wiped}"))
        c.start(wiped)
        for k in range(50):  # Writes while it catches up.
            assert cl.call("SET", f"during{k}", "x") == b"OK"
        wait_applied_equal(c, list(range(c.n)), timeout=60.0)
        assert info(c.client_ports[leader])["term"] == term, "an election happened"
        assert info(c.client_ports[wiped])["term"] == term
        ks = info(c.client_ports[wiped], "keyspace")
        assert ks.get("db0", "").startswith("keys=3050,"), ks
        with open(c.logs[wiped]) as f:
            assert "installed snapshot" in f.read()
        with open(c.logs[leader]) as f:
            assert "by a child" in f.read()
        assert int(info(c.client_ports[leader], "stats")["snapshot_fork_usec"]) >= 0


@case
def redis_benchmark_runs_without_errors(uraftd):
    # Goal: redis-benchmark -t set,get -n 20000 -c 50 completes against the cluster (through
    # the leader and through a follower) and every request succeeds.
    with running_cluster(uraftd) as c:
        c.start_all()
        leader = c.leader()
        follower = (leader + 1) % c.n
        for port, pipeline in ((c.client_ports[leader], "1"), (c.client_ports[follower], "8")):
            r = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", "20000",
                                "-c", "50", "-P", pipeline, "-q", "-r", "1000"],
                               capture_output=True, text=True, timeout=120)
            out = r.stdout.replace("\r", "\n")
            assert r.returncode == 0, r.stderr
            assert "ERR" not in out and "Error" not in out and "TRYAGAIN" not in out, out[-500:]
            assert re.search(r"SET: [\d.]+ requests per second", out), out[-500:]
            assert re.search(r"GET: [\d.]+ requests per second", out), out[-500:]
        assert redis_cli(c.client_ports[follower], "EXISTS", "key:000000000042") == "1"


if __name__ == "__main__":
    main()
