#!/usr/bin/env python3
"""Differential test: kv_core's replies against a real redis-server's, byte for byte.

Each case is a stream of requests sent on one fresh connection to redis-server and, through
redis_diff_driver, to kv_core; the replies must be identical. The cases cover every command
uraftd serves (replies and Redis's error words), inline commands, and each protocol error.
Where uraftd differs on purpose (no expiry, one database, RESP2 only) the case is left out:
those answers are pinned by the unit tests. Skips (exit 77) when redis-server is missing.
Usage: redis_diff.py DRIVER
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def resp(*argv):
    out = b"*%d\r\n" % len(argv)
    for a in argv:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def stream(*cmds):
    return b"".join(resp(*c) for c in cmds)


# One session of commands whose state carries from one to the next.
SESSION = [
    ("SET", "k", "v1"), ("GET", "k"), ("SET", "k", "v2", "NX"), ("SET", "k", "v2", "XX"),
    ("SET", "n", "x", "XX"), ("GET", "n"), ("SET", "k", "v3", "GET"), ("SET", "new", "v", "GET"),
    ("SET", "k", "v4", "NX", "GET"), ("SET", "k2", "v", "NX", "GET"), ("SET", "k", "v5", "XX", "GET"),
    ("SET", "k", "v6", "KEEPTTL"), ("GET", "k"), ("SET", "k", "v", "NX", "XX"),
    ("SET", "k", "v", "XX", "NX"), ("SET", "k", "v", "BOGUS"), ("SET", "k", "v", "EX"),
    ("SET", "k", "v", "EX", "10", "PX", "5"), ("SET", "k", "v", "KEEPTTL", "EX", "10"),
    ("SET", "k", "v", "GET", "GET"), ("SET", b"a\x00b", b"\r\n\x00"), ("GET", b"a\x00b"),
    ("MSET", "a", "1", "b", "22", "c", "333"), ("DBSIZE",), ("EXISTS", "a", "a", "x", "b"),
    ("MGET", "a", "x", "c"), ("STRLEN", "c"), ("STRLEN", "x"), ("MSET", "a", "first", "a", "second"),
    ("GET", "a"), ("DEL", "a", "a", "x"), ("DEL", "a"), ("MSET", "a"), ("MSET", "a", "1", "b"),
    ("APPEND", "ap", "abc"), ("APPEND", "ap", "de"), ("APPEND", "ap", ""), ("GET", "ap"),
    ("INCR", "n1"), ("INCRBY", "n1", "41"), ("DECR", "n1"), ("DECRBY", "n1", "50"), ("GET", "n1"),
    ("DECRBY", "fresh", "-3"), ("SET", "b", "abc"), ("INCR", "b"), ("SET", "b", " 1"), ("INCR", "b"),
    ("SET", "b", "01"), ("INCR", "b"), ("SET", "b", "1.5"), ("INCR", "b"), ("SET", "b", ""),
    ("INCR", "b"), ("SET", "b", "+1"), ("INCR", "b"), ("SET", "b", "-0"), ("INCR", "b"),
    ("SET", "max", "9223372036854775807"), ("INCR", "max"), ("INCRBY", "max", "0"),
    ("SET", "min", "-9223372036854775808"), ("DECR", "min"), ("INCRBY", "min", "-1"),
    ("DECRBY", "min", "9223372036854775807"), ("INCRBY", "min", "9223372036854775807"),
    ("DECRBY", "n1", "-9223372036854775808"), ("INCRBY", "n1", "x"), ("INCRBY", "k", "1.5"),
    ("DECRBY", "k", "99999999999999999999"), ("INCR", "k"),
    ("GET",), ("get", "a", "b"), ("SET", "k"), ("ECHO",), ("PING", "a", "b"), ("DBSIZE", "x"),
    ("PING",), ("ping", "hi"), ("ECHO", "a b"), ("SELECT", "0"), ("SELECT", "x"),
    ("foo", "a", "b"), ("foo",), ("x\r\ny", "a"), ("n" * 200, "a" * 100, "b" * 100, "c"),
    ("HELLO", "1"), ("HELLO", "x"), ("HELLO", "2", "BOGUS"), ("HELLO", "2", "AUTH", "default"),
    ("AUTH", "pw"), ("AUTH", "default", "anything"), ("AUTH", "a", "b", "c"),
    ("COMMAND", "DOCS", "nonexistent"), ("COMMAND", "COUNT", "x"), ("COMMAND", "FOO"),
    ("COMMAND", "INFO", "nope"), ("CONFIG", "GET", "save"), ("config", "get", "APPENDONLY"),
    ("CONFIG", "GET", "nothing"), ("CONFIG", "GET"), ("CONFIG", "nope"), ("CONFIG",),
    ("CLIENT", "GETNAME"), ("client", "setname", "worker-1"), ("CLIENT", "GETNAME"),
    ("CLIENT", "SETNAME", "has space"), ("CLIENT", "SETNAME", ""), ("CLIENT", "GETNAME"),
    ("CLIENT", "SETNAME"), ("CLIENT", "KILLX", "x"),
    ("FLUSHALL", "now"), ("FLUSHALL", "sync", "async"), ("DBSIZE",), ("FLUSHALL", "ASYNC"),
    ("DBSIZE",), ("EXISTS", "k"), ("QUIT",),
]

CASES = [stream(*SESSION)] + [
    b"*abc\r\n", b"*\r\n", b"*+3\r\n", b"*03\r\n", b"*1\r\n$abc\r\n", b"*1\r\n$-1\r\n", b"*1\r\n$\r\n",
    b"*1\r\n$600000000\r\n", b"*2\r\n$3\r\nGET\r\nx\r\n", b"*1\r\n:1\r\n", b"set \"abc\r\n",
    b"set 'abc\r\n", b"set \"a\"b\r\n", b"a" * 70000, b"*" + b"1" * 70000, b"*1\r\n$" + b"1" * 70000,
] + [c + b"QUIT\r\n" for c in [  # Well-formed: QUIT ends the connection.
    b"echo \"\\x41\\n\\r\\t\\\\\\\"z\"\r\n", b"echo 'it\\'s'\r\n", b"set \"a b\" 'c d'\r\nget \"a b\"\r\n",
    b"*0\r\n*-1\r\n\r\n  \n*1\r\n$4\r\nPING\r\n", b"*-5\r\nPING\r\n", b"PING\r\nPING x\r\nECHO\r\n",
]]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exchange(port, data):
    """Sends data on a fresh connection; returns everything received until the server closes
    (every case ends with QUIT or a protocol error; a quiet server is a backstop)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        s.settimeout(2)
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
        return got


def main():
    driver = sys.argv[1]
    server = shutil.which("redis-server")
    if server is None:
        print("redis-server not installed: skipped")
        return 77
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="uraft-redis-diff-")
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    print("redis-server did not start")
                    return 1
                time.sleep(0.05)
        failures = 0
        for i, case in enumerate(CASES):
            exchange(port, resp("FLUSHALL") + resp("QUIT"))
            expected = exchange(port, case)
            got = subprocess.run([driver], input=case, capture_output=True, check=True).stdout
            if got != expected:
                failures += 1
                # Show the first differing reply line.
                el, gl = expected.split(b"\r\n"), got.split(b"\r\n")
                j = next((j for j in range(min(len(el), len(gl))) if el[j] != gl[j]), min(len(el), len(gl)))
                print(f"case {i}: differs at line {j}:\n  redis:   {el[j:j+2]!r}\n  kv_core: {gl[j:j+2]!r}")
        print(f"{len(CASES)} cases, {failures} differing")
        return 1 if failures else 0
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
