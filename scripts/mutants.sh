#!/usr/bin/env bash
# Proves the simulator: injects, one at a time, the bugs Raft implementations typically have
# (each a one-line change to the committed code), builds cluster_sim with it in a scratch
# worktree, and reports how many of the seeds caught it and the first seed that did. A
# mutant no seed catches is a hole in the checkers (exit status 1).
#
#   scripts/mutants.sh [SEEDS [CLUSTER_SIM_ARGS...]]   (default 200: seeds 1..SEEDS, every fault)
#
# MUTANT=substring runs only the mutants whose name contains it.
#
# Outside CI (it builds once per mutant). Environment: URAFT_BUILD_ROOT as scripts/test.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seeds=${1:-200}
shift $(($# > 0 ? 1 : 0))
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/uraft-ccache}

tree=$(mktemp -d "${TMPDIR:-/tmp}/uraft-mutant.XXXXXX")
trap 'git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1; rm -rf "$tree"' EXIT
git worktree add --detach "$tree" HEAD >/dev/null 2>&1 || { echo "cannot create a worktree"; exit 1; }
build=$tree/build
meson setup "$build" "$tree" --buildtype=release -Dbenchmarks=false >/dev/null || exit 1

# name | file | the line as committed | the mutant
mutants=(
  "leader counts its own undurable entries|raft/replicator.cc|? writer_.log_durable()|? log_.last_index()"
  "follower acknowledges entries before they are durable|raft/node.cc|reply.success ? reply.match_index : LogIndex{0})) {|LogIndex{0})) {"
  "vote granted before it is durable|raft/node.cc|const HardState claim{reply.term, vote ? args.candidate_id : kNoNode};|const HardState claim{Term{0}, kNoNode};"
  "commit by counting an old term's entries|raft/rules.cc|if (quorum_index > commit_index && log.term_at(quorum_index) == current_term) {|if (quorum_index > commit_index && current_term.value > 0) {"
  "snapshot installed over a newer state|raft/rules.cc|if (args.last_included_index <= commit_index) return SnapshotAction::kIgnore;|(void)commit_index;"
)

status=0
for m in "${mutants[@]}"; do
  IFS='|' read -r name file from to <<<"$m"
  [[ "$name" == *"${MUTANT:-}"* ]] || continue
  git -C "$tree" checkout -q -- .
  python3 - "$tree/$file" "$from" "$to" <<'EOF' || { echo "mutant '$name': the line is gone from $file"; status=1; continue; }
import sys
path, old, new = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(1)
open(path, 'w').write(text.replace(old, new))
EOF
  ninja -C "$build" tests/sim/cluster_sim >"$tree/build.log" 2>&1 || { echo "mutant '$name': does not build"; status=1; continue; }
  out=$("$build/tests/sim/cluster_sim" --seeds "1..$seeds" "$@" 2>&1)
  caught=$(grep -c '^FAIL seed' <<<"$out")
  asserts=$(grep -c 'URAFT_ASSERT' <<<"$out")
  first=$(grep -m1 '^FAIL seed' <<<"$out")
  [ "$asserts" -gt 0 ] && first="$first [$asserts by a node's own assertion, e.g. $(grep -m1 -o 'URAFT_ASSERT([^)]*)' <<<"$out")]"
  if [ "$caught" -eq 0 ]; then
    echo "NOT CAUGHT: $name (0 of $seeds seeds)"
    status=1
  else
    echo "caught: $name: $caught of $seeds seeds; first: ${first:0:200}"
  fi
done
exit $status
