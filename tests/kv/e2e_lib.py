"""Helpers for uraftd's end-to-end tests: free ports, a local cluster of real uraftd
processes, a minimal RESP client over a plain socket, and redis-cli. Each test script
registers its cases with @case and calls main(); a failure prints the node logs."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def free_ports(n):
    """n distinct ports the kernel reports free on 127.0.0.1 (bound then released)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def wait_until(what, predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class RespError(Exception):
    pass


class Client:
    """A blocking RESP2 client on one socket: enough to send commands and read replies."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_reply(self):
        """The next reply: bytes, int, None, a list, or a RespError instance (not raised)."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read_reply() for _ in range(n)]
        raise AssertionError(f"not RESP: {line!r}")

    def call(self, *args):
        self.send_raw(self.encode(*args))
        reply = self.read_reply()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def closed_by_server(self, timeout=5.0):
        """True once the server closes the connection (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def info(port, section="raft"):
    c = Client(port, timeout=5)
    try:
        text = c.call("INFO", section).decode()
    finally:
        c.close()
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            fields[k] = v
    return fields


def redis_cli(port, *args, password=None, check=True):
    cmd = ["redis-cli", "-p", str(port)]
    env = dict(os.environ)
    if password is not None:
        env["REDISCLI_AUTH"] = password
    r = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                       timeout=20, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"redis-cli {args} failed: {r.stderr}")
    return r.stdout.strip()


class Cluster:
    """N uraftd processes on free ports with data under a temporary directory."""

    def __init__(self, uraftd, n=3, storage="wal", extra=(), cluster_id=7):
        self.uraftd = uraftd
        self.n = n
        self.storage = storage
        self.extra = list(extra)
        self.cluster_id = cluster_id
        self.dir = tempfile.mkdtemp(prefix="uraftd-e2e-")
        ports = free_ports(2 * n)
        self.client_ports = ports[:n]
        self.peer_ports = ports[n:]
        self.procs = [None] * n
        self.logs = [os.path.join(self.dir, f"node{i}.log") for i in range(n)]

    def args(self, i, cluster_id=None, extra=()):
        peers = ",".join(f"127.0.0.1:{p}" for p in self.peer_ports)
        clients = ",".join(f"127.0.0.1:{p}" for p in self.client_ports)
        return [self.uraftd, "--id", str(i), "--peers", peers, "--client-addresses", clients,
                "--port", str(self.client_ports[i]),
                "--data-dir", os.path.join(self.dir, f"node{i}"), "--storage", self.storage,
                "--cluster-id", str(self.cluster_id if cluster_id is None else cluster_id),
                "--log-level", "debug"] + self.extra + list(extra)

    def start(self, i, wait=True, **kw):
        assert self.procs[i] is None or self.procs[i].poll() is not None
        os.makedirs(os.path.join(self.dir, f"node{i}"), exist_ok=True)
        log = open(self.logs[i], "ab")
        self.procs[i] = subprocess.Popen(self.args(i, **kw), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        log.close()
        if wait:
            self.wait_ping(i)

    def start_all(self):
        for i in range(self.n):
            self.start(i, wait=False)
        for i in range(self.n):
            self.wait_ping(i)

    def wait_ping(self, i, timeout=10.0):
        def ping():
            if self.procs[i].poll() is not None:
                raise AssertionError(f"node {i} exited with {self.procs[i].returncode}")
            try:
                c = Client(self.client_ports[i], timeout=1)
                try:
                    return c.call("PING") == b"PONG"
                finally:
                    c.close()
            except OSError:
                return False
        wait_until(f"node {i} to answer PING", ping, timeout)

    def running(self, i):
        return self.procs[i] is not None and self.procs[i].poll() is None

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait(10)

    def stop(self, i):
        self.procs[i].send_signal(signal.SIGTERM)
        rc = self.procs[i].wait(10)
        assert rc == 0, f"node {i} exited with {rc} on SIGTERM"

    def leader(self, timeout=10.0):
        """The index of the node that is leader, once exactly one running node says so."""
        def find():
            leaders = []
            for i in range(self.n):
                if not self.running(i):
                    continue
                try:
                    if info(self.client_ports[i]).get("role") == "leader":
                        leaders.append(i)
                except OSError:
                    pass
            return leaders[0] if len(leaders) == 1 else None
        found = wait_until("a leader", lambda: (find(),) if find() is not None else None, timeout)
        return found[0]

    def close(self):
        for i in range(self.n):
            if self.running(i):
                self.procs[i].send_signal(signal.SIGKILL)
                self.procs[i].wait(10)

    def dump_logs(self):
        for i, path in enumerate(self.logs):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    lines = f.readlines()
                sys.stderr.write(f"--- node {i} log (last 40 lines) ---\n")
                sys.stderr.writelines(lines[-40:])

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_cluster(uraftd, **kwargs):
    """A Cluster(uraftd, **kwargs) for the body of a with statement: if the body raises, the
    nodes' logs are printed; in any case the processes are killed and the data removed."""
    c = Cluster(uraftd, **kwargs)
    try:
        yield c
    except Exception:
        c.dump_logs()
        raise
    finally:
        c.close()
        c.remove()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def main():
    """Runs every @case (or those named on the command line after the uraftd path)."""
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} path/to/uraftd [case ...]")
    uraftd = os.path.abspath(sys.argv[1])
    only = set(sys.argv[2:])
    passed = failed = 0
    for fn in CASES:
        if only and fn.__name__ not in only:
            continue
        started = time.monotonic()
        try:
            fn(uraftd)
            passed += 1
            print(f"ok   {fn.__name__} ({time.monotonic() - started:.1f} s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__} ({time.monotonic() - started:.1f} s)", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
