#!/usr/bin/env bash
# scripts/cluster.sh end to end, in a temporary cluster directory on free ports: up (twice:
# no duplicates), status, a write through the printed redis-cli line, kill, restart, logs,
# bench, down, clean. Usage: e2e_cluster_sh.sh path/to/build/kv/uraftd
set -euo pipefail
uraftd=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cluster=$repo/scripts/cluster.sh

tmp=$(mktemp -d /tmp/uraft-cluster-sh-XXXXXX)
export URAFT_CLUSTER_DIR=$tmp/cluster
export URAFT_BUILD_DIR=$(dirname "$(dirname "$uraftd")")
read -r client_port peer_port < <(python3 "$here/port_runs.py" 3 2)
export URAFT_CLIENT_PORT=$client_port URAFT_PEER_PORT=$peer_port

. "$here/../check.sh"
cleanup() {
  "$cluster" clean >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

out=$("$cluster" up 3 2>&1) || { echo "$out"; echo "0 passed, 1 failed"; exit 1; }
echo "$out"
check "up prints the leader" grep -q "^leader: node [1-3], client port" <<<"$out"
check "up prints a redis-cli line" grep -q "redis-cli -p $client_port\|redis-cli -p $((client_port + 1))\|redis-cli -p $((client_port + 2))" <<<"$out"
pids1=$(cat "$URAFT_CLUSTER_DIR"/node*/uraftd.pid | sort)

out=$("$cluster" up 2>&1)
check "up twice starts nothing new" grep -q "already running" <<<"$out"
pids2=$(cat "$URAFT_CLUSTER_DIR"/node*/uraftd.pid | sort)
check "up twice keeps the same processes" test "$pids1" = "$pids2"
check "three processes" test "$(wc -l <<<"$pids2")" = 3

line=$(grep -o "redis-cli -p [0-9]*" <<<"$out" | head -1)
check "the printed redis-cli line writes" test "$($line SET greeting hello)" = OK
check "a follower reads it" test "$(redis-cli -p $((client_port + 2)) GET greeting)" = hello

status=$("$cluster" status)
echo "$status"
check "status shows one leader" test "$(grep -c " leader " <<<"$status")" = 1
check "status shows two followers" test "$(grep -c " follower " <<<"$status")" = 2

"$cluster" kill 2 >/dev/null
status=$("$cluster" status)
check "status shows the killed node down" grep -q "^2 .* down" <<<"$status"
"$cluster" restart 2 >/dev/null
check "restart brings it back" test "$(redis-cli -p $((client_port + 1)) PING)" = PONG
check "logs shows the node's log" grep -q "serving clients" <<<"$("$cluster" logs 2)"
out=$("$cluster" transfer 3)
check "transfer 3 makes node 3 the leader" grep -Eq "node 3 leads (now|already)" <<<"$out"
out=$("$cluster" transfer 2)
check "transfer 2 then moves it to node 2" grep -q "node 2 leads now" <<<"$out"
check "node 2 says it leads" grep -q "^2 .* leader " <<<"$("$cluster" status)"
"$cluster" stop 2 >/dev/null
check "stopping the leader hands its leadership over" \
  grep -q "leadership handed over" "$URAFT_CLUSTER_DIR/node2.log"
for _ in $(seq 1 50); do  # Node 1 may not have heard of the new leader yet.
  reply=$(redis-cli -p "$client_port" SET k2 v)
  [ "$reply" = OK ] && break
  sleep 0.1
done
check "the cluster writes with the leader stopped" test "$reply" = OK
"$cluster" start 2 >/dev/null
bench=$("$cluster" bench -t set -n 2000 -c 10 -q 2>&1 | tr '\r' '\n')
check "bench runs" grep -q "SET: .* requests per second" <<<"$bench"

"$cluster" down >/dev/null
alive=0
for p in $pids1 $(cat "$URAFT_CLUSTER_DIR"/node*/uraftd.pid 2>/dev/null); do
  state=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$p/stat" 2>/dev/null || true)
  if [ -n "$state" ] && [ "$state" != Z ]; then alive=$((alive + 1)); fi
done
check "down stops every node" test "$alive" = 0
check "down keeps the data" test -d "$URAFT_CLUSTER_DIR/node1"
"$cluster" clean >/dev/null
check "clean removes the cluster directory" test ! -e "$URAFT_CLUSTER_DIR"

check_summary
