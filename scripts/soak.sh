#!/usr/bin/env bash
# Soaks the Raft lab suite: runs every test (or those matching FILTER) on N seeds, in parallel
# on all cores, then prints per test how many seeds passed, every failing seed with its replay
# command, and runs that crashed (an assertion aborts the process; its message names the run).
# Then the cluster simulator (cluster_sim, every fault) on SOAK_SIM_SEEDS seeds from
# FIRST_SEED with 3 nodes and a fifth as many with 5 nodes, split over the cores.
#
#   scripts/soak.sh N [FIRST_SEED] [FILTER]
#
# Environment: RAFT_LAB (the raft_lab binary; default: build it in $URAFT_BUILD_ROOT/release,
# as scripts/test.sh does), SOAK_CHUNK (seeds per process, default 5), SOAK_JOBS (default nproc),
# SOAK_KEEP=1 keeps the per-run logs, SOAK_SIM_SEEDS (default 10000; 0 skips the simulator),
# SOAK_LAB=0 skips the lab, CLUSTER_SIM (the cluster_sim binary; default: built as raft_lab).
set -uo pipefail
cd "$(dirname "$0")/.."

n=${1:?usage: scripts/soak.sh N [FIRST_SEED] [FILTER]}
first=${2:-1}
filter=${3:-}
chunk=${SOAK_CHUNK:-5}
jobs=${SOAK_JOBS:-$(nproc)}
last=$((first + n - 1))

lab=${RAFT_LAB:-}
if [ -z "$lab" ]; then
  build=${URAFT_BUILD_ROOT:-$(pwd)/build}/release
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --buildtype=release >/dev/null || exit 1
  fi
  ninja -C "$build" tests/raft/raft_lab tests/sim/cluster_sim >/dev/null || { echo "build failed"; exit 1; }
  lab=$build/tests/raft/raft_lab
  CLUSTER_SIM=${CLUSTER_SIM:-$build/tests/sim/cluster_sim}
fi
sim=${CLUSTER_SIM:-$(dirname "$lab")/../sim/cluster_sim}
sim_seeds=${SOAK_SIM_SEEDS:-10000}
[ "${SOAK_LAB:-1}" = 0 ] && n=0

status=0
logs=$(mktemp -d "${TMPDIR:-/tmp}/raft-soak.XXXXXX")
export SOAK_LOGS=$logs
if [ "$n" -gt 0 ]; then
args=()
[ -n "$filter" ] && args=(--filter "$filter")
mapfile -t tests < <("$lab" --list "${args[@]}")
[ ${#tests[@]} -gt 0 ] || { echo "no test matches '$filter'"; exit 1; }

# One line per process: test, first seed, last seed.
for t in "${tests[@]}"; do
  for ((s = first; s <= last; s += chunk)); do
    e=$((s + chunk - 1)); [ $e -gt $last ] && e=$last
    echo "$t $s $e"
  done
done >"$logs/work"

echo "soak: ${#tests[@]} tests x $n seeds ($first..$last) on $jobs jobs, logs in $logs"
SECONDS=0
# Each line of the work list becomes $1..$3 of one raft_lab process ($0 is the binary).
# shellcheck disable=SC2016
xargs -P "$jobs" -L 1 sh -c \
  '"$0" --test "$1" --seeds "$2..$3" >"$SOAK_LOGS/$1.$2.log" 2>&1; echo $? >"$SOAK_LOGS/$1.$2.rc"' \
  "$lab" <"$logs/work"
elapsed=$SECONDS

printf '\n%-34s %9s  %s\n' test passed "failures"
for t in "${tests[@]}"; do
  pass=$(cat "$logs/$t".*.log 2>/dev/null | grep -c "^PASS $t ")
  fails=$(cat "$logs/$t".*.log 2>/dev/null | grep "^FAIL $t " | awk '{print $4}' | sort -n | tr '\n' ' ')
  crashed=""
  for rc in "$logs/$t".*.rc; do
    [ -f "$rc" ] || continue
    code=$(cat "$rc")
    if [ "$code" != 0 ] && [ "$code" != 1 ]; then
      crashed+="$(basename "$rc" .rc | sed "s/^$t\.//") "
    fi
  done
  note=""
  [ -n "$fails" ] && note+="failed seeds: $fails"
  [ -n "$crashed" ] && note+="crashed in chunks starting at: $crashed"
  [ -n "$note" ] && status=1
  printf '%-34s %4d/%-4d  %s\n' "$t" "$pass" "$n" "$note"
done

if [ $status != 0 ]; then
  echo
  echo "== failures (with replay commands)"
  cat "$logs"/*.log | grep -E -A2 "^FAIL" | grep -v "^--" | head -90
  cat "$logs"/*.log | grep -E "URAFT_ASSERT|TIMEOUT" | head -10
fi
echo
echo "wall time ${elapsed} s"
fi

if [ "$sim_seeds" -gt 0 ]; then
  echo
  five=$((sim_seeds / 5))
  echo "soak: cluster_sim on seeds $first..$((first + sim_seeds - 1)) (3 nodes) and $first..$((first + five - 1)) (5 nodes), every fault, $jobs jobs"
  SECONDS=0
  for ((j = 0; j < jobs; j++)); do
    for nodes in 3 5; do
      count=$sim_seeds; [ $nodes = 5 ] && count=$five
      [ "$count" -gt 0 ] || continue
      per=$(((count + jobs - 1) / jobs))
      a=$((first + j * per)); b=$((a + per - 1)); [ $b -gt $((first + count - 1)) ] && b=$((first + count - 1))
      [ $a -le $b ] || continue
      echo "$nodes $a $b"
    done
  done >"$logs/sim_work"
  # shellcheck disable=SC2016
  xargs -P "$jobs" -L 1 sh -c '"$0" --nodes "$1" --seeds "$2..$3" >"$SOAK_LOGS/sim.$1.$2.log" 2>&1' "$sim" <"$logs/sim_work"
  grep -h "^cluster_sim:" "$logs"/sim.*.log | awk -v t=$SECONDS '{s+=$2; p+=$4; f+=$6} END {printf "cluster_sim: %d seeds, %d passed, %d failed in %d s\n", s, p, f, t}'
  if grep -q "^FAIL" "$logs"/sim.*.log; then
    status=1
    echo "== cluster_sim failures (with replay commands)"
    grep -h -E "^FAIL|^  replay:" "$logs"/sim.*.log | head -40
  fi
fi
if [ "${SOAK_KEEP:-0}" != 1 ] && [ $status = 0 ]; then rm -rf "$logs"; else echo "logs kept in $logs"; fi
exit $status
