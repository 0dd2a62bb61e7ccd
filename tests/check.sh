# Sourced by the shell tests: `check DESCRIPTION COMMAND...` runs one case and prints ok/FAIL;
# `check_summary` prints "N passed, M failed" (the line scripts/count_tests.py reads) and
# returns non-zero if any case failed.
passed=0
failed=0
check() {
  local what=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $what"; else failed=$((failed + 1)); echo "FAIL $what"; fi
}
check_summary() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
