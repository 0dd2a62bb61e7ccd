#!/usr/bin/env python3
"""Prints the first port of each of K runs of N consecutive ports free on 127.0.0.1, the runs
apart from each other: `port_runs.py N K` (the shell e2e tests take client and peer ports)."""
import socket
import sys


def run(n):
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 60000:
            continue
        socks = []
        try:
            for port in range(base, base + n):
                t = socket.socket()
                socks.append(t)
                t.bind(("127.0.0.1", port))
            return base
        except OSError:
            pass
        finally:
            for t in socks:
                t.close()


def main():
    n, k = int(sys.argv[1]), int(sys.argv[2])
    bases = []
    while len(bases) < k:
        b = run(n)
        if all(abs(b - other) >= n for other in bases):
            bases.append(b)
    print(" ".join(map(str, bases)))


main()
