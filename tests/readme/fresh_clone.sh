#!/usr/bin/env bash
# The README's first command as a new user runs it: the committed files of the source tree are
# copied to a fresh directory with no build/ and no cluster/, and there `scripts/cluster.sh up`
# (no URAFT_BUILD_DIR, no URAFT_CLUSTER_DIR: it must configure and build by itself) starts a
# cluster that redis-cli talks to; then `down` and `clean`. Only the ports are chosen (free
# ones), so that the test never collides with a cluster already running on the defaults.
# Usage: fresh_clone.sh SOURCE_ROOT
set -euo pipefail
src=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../check.sh"

tmp=$(mktemp -d /tmp/uraft-fresh-clone-XXXXXX)
clone=$tmp/uraft
cleanup() {
  [ -x "$clone/scripts/cluster.sh" ] && "$clone/scripts/cluster.sh" clean >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Committed files only (a clean clone has nothing else); outside git, everything but outputs.
mkdir -p "$clone"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
  done | xargs -0 cp --parents -t "$clone")
else
  (cd "$src" && tar --exclude='./build*' --exclude=./cluster -cf - .) | tar -xf - -C "$clone"
fi
check "the copy has no build/" test ! -e "$clone/build"
check "the copy has no cluster/" test ! -e "$clone/cluster"

read -r client_port peer_port < <(python3 "$src/tests/kv/port_runs.py" 3 2)
export URAFT_CLIENT_PORT=$client_port URAFT_PEER_PORT=$peer_port
unset URAFT_BUILD_DIR URAFT_CLUSTER_DIR

cd "$clone"
if out=$(scripts/cluster.sh up 2>&1); then up=0; else up=$?; fi
echo "$out"
check "scripts/cluster.sh up succeeds on a fresh clone" test "$up" = 0
check "it built uraftd in build/release" test -x "$clone/build/release/kv/uraftd"
check "it printed the leader" grep -q "^leader: node [1-3], client port" <<<"$out"
check "redis-cli writes through node 1" test "$(redis-cli -p "$client_port" set k v)" = OK
check "redis-cli reads it on node 3" test "$(redis-cli -p $((client_port + 2)) get k)" = v
check "scripts/cluster.sh down stops the nodes" scripts/cluster.sh down
check "no node answers after down" bash -c "! redis-cli -p $client_port ping 2>/dev/null | grep -q PONG"
check "scripts/cluster.sh clean removes cluster/" bash -c 'scripts/cluster.sh clean && test ! -e cluster'
check_summary
