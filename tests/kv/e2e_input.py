#!/usr/bin/env python3
"""uraftd end to end, at its edges: malformed RESP, oversized lengths, binary garbage, a
client that never reads its replies, AUTH with --requirepass, and a peer configured with
another cluster id. Each bad client gets an error and/or is closed; every other client goes
on being served. Usage: e2e_input.py path/to/uraftd [case ...]"""

import random
import re
import socket
import subprocess
import time

from e2e_lib import (Client, RespError, case, info, main, redis_cli, rss_kib,
                     running_cluster, wait_until)


def assert_serving(port):
    c = Client(port)
    try:
        assert c.call("PING") == b"PONG"
        assert c.call("SET", "alive", "yes") == b"OK"
        assert c.call("GET", "alive") == b"yes"
    finally:
        c.close()


@case
def version_is_printed(uraftd):
    # Goal: --version prints the program and its version and exits 0, with no other option.
    r = subprocess.run([uraftd, "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"uraftd \d+\.\d+\.\d+\n", r.stdout), r.stdout


@case
def malformed_input_closes_only_that_client(uraftd):
    # Goal: each kind of malformed request gets "-ERR Protocol error: ..." and its connection
    # closed, while a client connected all along keeps being served.
    with running_cluster(uraftd, n=1, storage="mem") as c:
        c.start_all()
        c.leader()
        port = c.client_ports[0]
        bystander = Client(port)
        assert bystander.call("SET", "k", "v") == b"OK"
        cases = [
            (b"*abc\r\n", "invalid multibulk length"),
            (b"*3000000\r\n", "invalid multibulk length"),                # Too many elements.
            (b"*1\r\n$999999999999\r\n", "invalid bulk length"),          # Over the bulk limit.
            (b"*1\r\n$-5\r\n", "invalid bulk length"),
            (b"*1\r\n$17000000\r\n", "invalid bulk length"),              # 16 MiB + a bit.
            (b"*2\r\n$3\r\nGET\r\n:1\r\n", "expected '$'"),
            (b"*1\r\n$3\r\nGETXY", "Protocol error"),                     # Bulk not terminated.
            (b'SET "unbalanced\r\n', "unbalanced quotes"),
            (b"x" * (70 * 1024), "too big inline request"),             # No newline in 64 KiB.
            (b"*1\r\n$" + b"9" * (70 * 1024), "too big bulk count"),
        ]
        for payload, expected in cases:
            bad = Client(port)
            bad.send_raw(payload)
            reply = bad.read_reply()
            assert isinstance(reply, RespError), (payload[:40], reply)
            assert str(reply).startswith("ERR Protocol error"), (payload[:40], reply)
            assert expected in str(reply), (payload[:40], str(reply))
            assert bad.closed_by_server(), f"not closed after {payload[:40]!r}"
            bad.close()
            assert bystander.call("GET", "k") == b"v"
        # Binary garbage: whatever the parser makes of it, the node survives and serves.
        rng = random.Random(6)
        for _ in range(20):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8192)))
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(5)
                while s.recv(65536):
                    pass
            except (ConnectionResetError, BrokenPipeError):
                pass
            finally:
                s.close()
        assert bystander.call("PING") == b"PONG"
        bystander.close()
        assert_serving(port)
        errors = int(info(port, "stats")["protocol_errors"])
        assert errors >= len(cases), errors


@case
def unknown_commands_and_bad_arguments_keep_the_connection(uraftd):
    # Goal: errors a client can recover from (unknown command, wrong arity, a non-integer)
    # are replies on an open connection, in request order with the rest of a pipeline.
    with running_cluster(uraftd, n=1, storage="mem") as c:
        c.start_all()
        c.leader()
        cl = Client(c.client_ports[0])
        cl.send_raw(b"".join(Client.encode(*cmd) for cmd in
                             [("NOSUCH", "a"), ("GET",), ("SET", "n", "x"), ("INCR", "n"),
                              ("PING",)]))
        replies = [cl.read_reply() for _ in range(5)]
        assert str(replies[0]).startswith("ERR unknown command"), replies
        assert "wrong number of arguments" in str(replies[1]), replies
        assert replies[2] == b"OK"
        assert "not an integer" in str(replies[3]), replies
        assert replies[4] == b"PONG"
        cl.close()


@case
def client_that_never_reads_cannot_grow_memory(uraftd):
    # Goal: a client pipelining GETs of a large value without reading a byte of the replies
    # is no longer read once its replies back up; the node's memory stays bounded and other
    # clients are served meanwhile.
    with running_cluster(uraftd, n=1, storage="mem") as c:
        c.start_all()
        c.leader()
        port = c.client_ports[0]
        value = b"v" * (512 * 1024)
        setter = Client(port)
        assert setter.call("SET", "big", value) == b"OK"
        pid = c.procs[0].pid
        before = rss_kib(pid)
        hog = socket.socket()
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.connect(("127.0.0.1", port))
        hog.setblocking(False)
        request = Client.encode("GET", "big")
        sent = 0
        deadline = time.monotonic() + 5
        # 20,000 GETs would ask for 10 GiB of replies.
        chunk = request * 1000
        while sent < 20 * len(chunk) and time.monotonic() < deadline:
            try:
                sent += hog.send(chunk)
            except BlockingIOError:
                time.sleep(0.05)
        time.sleep(0.5)
        after = rss_kib(pid)
        assert_serving(port)
        assert setter.call("GET", "alive") == b"yes"
        grown_mib = (after - before) / 1024
        print(f"     sent {sent // len(request)} GETs of 512 KiB unread; RSS grew {grown_mib:.1f} MiB")
        assert grown_mib < 128, f"RSS grew {grown_mib:.1f} MiB"
        hog.close()
        setter.close()
        assert_serving(port)


@case
def requirepass_needs_auth(uraftd):
    # Goal: with --requirepass, every command but AUTH (and HELLO, QUIT) answers NOAUTH until
    # the client authenticates; a wrong password is refused; redis-cli -a works.
    with running_cluster(uraftd, n=1, storage="mem", extra=["--requirepass", "s3cret"]) as c:
        c.procs[0] = None
        c.start(0, wait=False)
        port = c.client_ports[0]
        cl = wait_until("the node to listen", lambda: _connect(port))
        for cmd in (("PING",), ("GET", "k"), ("SET", "k", "v"), ("INFO",)):
            try:
                cl.call(*cmd)
                raise AssertionError(f"{cmd} answered without AUTH")
            except RespError as e:
                assert str(e).startswith("NOAUTH"), e
        try:
            cl.call("AUTH", "wrong")
            raise AssertionError("a wrong password was accepted")
        except RespError as e:
            assert "WRONGPASS" in str(e) or "invalid password" in str(e), e
        assert cl.call("AUTH", "s3cret") == b"OK"
        wait_until("a leader", lambda: info_auth(cl).get("role") == "leader")
        assert cl.call("SET", "k", "v") == b"OK"
        cl.close()
        assert redis_cli(port, "GET", "k", password="s3cret") == "v"
        assert "NOAUTH" in redis_cli(port, "GET", "k", check=False)


def _connect(port):
    try:
        return Client(port)
    except OSError:
        return None


def info_auth(cl):
    text = cl.call("INFO", "raft").decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@case
def peer_with_another_cluster_id_is_rejected(uraftd):
    # Goal: a node started with another cluster id is refused by its peers' transports (bad
    # hello: wrong_cluster), never joins, and answers -TRYAGAIN no leader promptly; the other
    # two form the cluster and serve.
    with running_cluster(uraftd, n=3, storage="mem", cluster_id=7) as c:
        c.start(0, wait=False)
        c.start(1, wait=False)
        c.start(2, wait=False, cluster_id=8)
        for i in range(3):
            c.wait_ping(i)
        leader = c.leader()
        assert leader in (0, 1)
        assert_serving(c.client_ports[leader])
        time.sleep(1.5)  # Several of the stranger's elections.
        stranger = info(c.client_ports[2])
        assert stranger["role"] != "leader" and stranger["leader_id"] == "-1", stranger
        cl = Client(c.client_ports[2])
        started = time.monotonic()
        try:
            cl.call("SET", "k", "v")
            raise AssertionError("the stranger accepted a write")
        except RespError as e:
            assert str(e).startswith("TRYAGAIN no leader"), e
        assert time.monotonic() - started < 0.5
        cl.close()
        logs = "".join(open(c.logs[i], errors="replace").read() for i in range(3))
        assert "wrong_cluster" in logs, "no peer logged the wrong cluster id"
        wrong = sum(int(info(c.client_ports[i], "stats")["peer_wrong_cluster"]) for i in range(3))
        assert wrong > 0, "no node counted a wrong cluster id"
        for i in (0, 1):
            assert info(c.client_ports[i])["term"] == info(c.client_ports[leader])["term"]


if __name__ == "__main__":
    main()
