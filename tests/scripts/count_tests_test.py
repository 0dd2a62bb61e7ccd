#!/usr/bin/env python3
"""scripts/count_tests.py on made-up meson test logs: doctest counts are summed, a skipped
test is listed apart, and a skipped test named by --must-run counts as failed.
Usage: count_tests_test.py path/to/scripts/count_tests.py"""

import json
import os
import subprocess
import sys
import tempfile


def run(script, entries, *flags):
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "meson-logs"))
        with open(os.path.join(d, "meson-logs", "testlog.json"), "w") as f:
            for e in entries:
                f.write(json.dumps(e) + "\n")
        r = subprocess.run([sys.executable, script, *flags, d], capture_output=True, text=True)
        return r.returncode, r.stdout.strip().splitlines()[-1], r.stdout


def main():
    script = sys.argv[1]
    doctest = {"name": "uraft:unit / core_unit", "result": "OK",
               "stdout": "[doctest] test cases:  3 |  3 passed | 0 failed | 0 skipped"}
    skip = {"name": "uraft:e2e / kv_redis_diff", "result": "SKIP", "stdout": ""}
    failures = 0

    def check(what, got, want):
        nonlocal failures
        print(("ok   " if got == want else "FAIL ") + what + ("" if got == want else f": {got!r}"))
        failures += got != want

    rc, last, out = run(script, [doctest, skip])
    check("a skipped test is not counted", (rc, last), (0, "3 passed, 0 failed"))
    check("and is listed", "SKIPPED (not counted)" in out and "1 skipped" in out, True)
    rc, last, out = run(script, [doctest, skip], "--must-run", "kv_redis_diff")
    check("a skipped test that must run fails", (rc, last), (1, "3 passed, 1 failed"))
    rc, last, _ = run(script, [doctest, dict(skip, result="OK")], "--must-run", "kv_redis_diff")
    check("a test that must run and ran counts", (rc, last), (0, "4 passed, 0 failed"))
    print(f"{4 - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
