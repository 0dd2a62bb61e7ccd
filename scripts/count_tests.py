#!/usr/bin/env python3
"""Sums test cases over meson test logs: doctest's own counts for doctest programs, the
last "N passed, M failed" line of our own runners, one case for any other test program.
A skipped test (exit status 77: something it needs is not on the machine) counts as neither,
and is listed with a count of its own, unless it is named by --must-run (scripts/deps.sh
installs what it needs): then it counts as failed. Prints per-directory totals, then
"N passed, M failed" as the last line. Exits non-zero if anything failed or nothing ran.

    count_tests.py [--must-run NAME ...] BUILD_DIR ..."""
import json
import re
import sys

DOCTEST = re.compile(r"\[doctest\] test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed")
PLAIN = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)  # Our own runners (raft_lab).

args = sys.argv[1:]
must_run = set()
while args[:1] == ["--must-run"] and len(args) >= 2:
    must_run.add(args[1])
    args = args[2:]

passed = failed = 0
skipped = []
for build_dir in args:
    dir_passed = dir_failed = 0
    try:
        log = open(f"{build_dir}/meson-logs/testlog.json", encoding="utf-8", errors="replace")
    except OSError:
        print(f"{build_dir}: no test log")
        failed += 1
        continue
    for line in log:
        entry = json.loads(line)
        if entry.get("result") == "SKIP":
            if entry.get("name", "").split(" / ")[-1] in must_run:  # "uraft:e2e / kv_redis_diff"
                print(f"FAILED: {build_dir}: {entry.get('name')} was skipped, but must run "
                      "(is what scripts/deps.sh installs missing?)")
                dir_failed += 1
            else:
                skipped.append(f"{build_dir}: {entry.get('name')}")
            continue
        ok = entry.get("result") in ("OK", "EXPECTEDFAIL")
        stdout = entry.get("stdout", "") or ""
        match = DOCTEST.search(stdout)
        plain = PLAIN.findall(stdout)
        if match or plain:
            p, f = ((int(match.group(2)), int(match.group(3))) if match
                    else (int(plain[-1][0]), int(plain[-1][1])))
            if not ok and f == 0:
                f = 1  # Crashed or timed out after its summary, or exit status said so.
        else:
            p, f = (1, 0) if ok else (0, 1)
        if not ok:
            print(f"FAILED: {build_dir}: {entry.get('name')} ({entry.get('result')})")
        dir_passed += p
        dir_failed += f
    print(f"{build_dir}: {dir_passed} passed, {dir_failed} failed")
    passed += dir_passed
    failed += dir_failed

for name in skipped:
    print(f"SKIPPED (not counted): {name}")
if skipped:
    print(f"{len(skipped)} skipped")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or passed == 0 else 0)
