#!/usr/bin/env bash
# A local uraftd cluster: every node a background process on 127.0.0.1, their data and logs
# under one cluster directory.
#
#   scripts/cluster.sh up [N]     start N nodes (default 3; builds first if needed), wait for a
#                                 leader, print the nodes and a redis-cli line. Nodes already
#                                 running are left alone, so running it twice starts nothing new.
#   scripts/cluster.sh status     role, term, commit and applied index of each node (INFO)
#   scripts/cluster.sh down       stop every node (SIGTERM), keep the data
#   scripts/cluster.sh kill I     SIGKILL node I (1..N)
#   scripts/cluster.sh stop I     SIGTERM node I and wait for it to exit (a leader hands its
#                                 leadership to a caught-up follower first: no election gap)
#   scripts/cluster.sh transfer [I]  the leader hands its leadership to node I (default: the
#                                 follower whose log matches furthest)
#   scripts/cluster.sh start I    start node I again (also: restart I = stop, then start)
#   scripts/cluster.sh logs I     the last lines of node I's log (-f to follow)
#   scripts/cluster.sh bench [redis-benchmark options]
#                                 redis-benchmark against the leader (default: SET and GET,
#                                 100000 requests, 50 clients, pipeline 16, 256-byte values)
#   scripts/cluster.sh clean      down, then remove the cluster directory
#
# Environment: URAFT_CLUSTER_DIR (default ./cluster), URAFT_CLIENT_PORT (first client port,
# default 6381), URAFT_PEER_PORT (first peer port, default 7001), URAFT_STORAGE (wal or mem,
# default wal), URAFT_BUILD_DIR (default ./build/release, the build scripts/test.sh uses),
# URAFT_LOG_LEVEL (default info), URAFT_SNAPSHOT_LOG_BYTES, URAFT_REQUIREPASS.
# Ports and node count are fixed when a cluster is first created (in cluster.env).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

dir=${URAFT_CLUSTER_DIR:-$root/cluster}
build_dir=${URAFT_BUILD_DIR:-$root/build/release}
bin=$build_dir/kv/uraftd

die() { echo "cluster.sh: $*" >&2; exit 1; }

# --- cluster settings: chosen at the first `up`, then read back from cluster.env -----------
load_env() {
  if [ -f "$dir/cluster.env" ]; then
    # shellcheck disable=SC1091
    . "$dir/cluster.env"
  else
    nodes=""
  fi
}

save_env() {
  mkdir -p "$dir"
  cat >"$dir/cluster.env" <<EOF
nodes=$nodes
client_port=$client_port
peer_port=$peer_port
cluster_id=$cluster_id
storage=$storage
EOF
}

need_cluster() {
  load_env
  [ -n "$nodes" ] || die "no cluster in $dir (run: scripts/cluster.sh up)"
}

check_index() {  # I
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$nodes" ] ||
    die "node '$1' is not one of 1..$nodes"
}

port_of() { echo $((client_port + $1 - 1)); }
pid_file() { echo "$dir/node$1/uraftd.pid"; }
log_file() { echo "$dir/node$1.log"; }

# Whether process PID runs (an exited process not yet reaped by its parent does not).
alive() {
  local state
  state=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null || true)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# The pid of node I if it is running (a uraftd process), else nothing.
pid_of() {
  local f pid
  f=$(pid_file "$1")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && alive "$pid" && grep -q uraftd "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"
  fi
}

cli() {  # port, command...
  local port=$1; shift
  if [ -n "${URAFT_REQUIREPASS:-}" ]; then
    REDISCLI_AUTH=$URAFT_REQUIREPASS redis-cli -p "$port" "$@"
  else
    redis-cli -p "$port" "$@"
  fi
}

info_field() {  # port, field
  cli "$1" INFO raft 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

build() {
  scripts/deps.sh
  if [ ! -f "$build_dir/build.ninja" ]; then
    echo "cluster.sh: configuring $build_dir" >&2
    mkdir -p "$(dirname "$build_dir")"  # A fresh clone has no build/ yet: the log goes beside the tree.
    meson setup "$build_dir" --buildtype=release >"$build_dir.setup.log" 2>&1 ||
      { cat "$build_dir.setup.log" >&2; die "meson setup failed"; }
  fi
  if ! ninja -C "$build_dir" -n kv/uraftd 2>/dev/null | grep -q "no work to do"; then
    echo "cluster.sh: building uraftd in $build_dir" >&2
    ninja -C "$build_dir" kv/uraftd >"$build_dir.uraftd.log" 2>&1 ||
      { tail -30 "$build_dir.uraftd.log" >&2; die "build failed"; }
  fi
}

start_node() {  # I
  local i=$1 id=$(($1 - 1)) peers="" clients="" j
  if [ -n "$(pid_of "$i")" ]; then return 0; fi
  for j in $(seq 0 $((nodes - 1))); do
    peers+="${peers:+,}127.0.0.1:$((peer_port + j))"
    clients+="${clients:+,}127.0.0.1:$((client_port + j))"
  done
  mkdir -p "$dir/node$i"
  local args=(--id "$id" --peers "$peers" --client-addresses "$clients"
    --port "$(port_of "$i")" --data-dir "$dir/node$i" --storage "$storage"
    --cluster-id "$cluster_id" --log-level "${URAFT_LOG_LEVEL:-info}")
  [ -n "${URAFT_SNAPSHOT_LOG_BYTES:-}" ] && args+=(--snapshot-log-bytes "$URAFT_SNAPSHOT_LOG_BYTES")
  [ -n "${URAFT_REQUIREPASS:-}" ] && args+=(--requirepass "$URAFT_REQUIREPASS")
  nohup "$bin" "${args[@]}" >>"$(log_file "$i")" 2>&1 </dev/null &
  echo $! >"$(pid_file "$i")"
}

stop_node() {  # I, signal
  local pid waited=0
  pid=$(pid_of "$1")
  [ -n "$pid" ] || return 0
  kill "-$2" "$pid" 2>/dev/null || true
  while alive "$pid"; do
    sleep 0.1
    waited=$((waited + 1))
    if [ "$waited" -eq 100 ]; then  # 10 s: it is stuck; make sure.
      echo "cluster.sh: node $1 did not stop within 10 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$(pid_file "$1")"
}

# The index (1..N) of the node that says it is the leader, if any.
leader() {
  local i
  for i in $(seq 1 "$nodes"); do
    [ -n "$(pid_of "$i")" ] || continue
    if [ "$(info_field "$(port_of "$i")" role)" = leader ]; then
      echo "$i"
      return 0
    fi
  done
}

wait_leader() {  # seconds
  local deadline=$((SECONDS + $1)) l
  while [ $SECONDS -lt "$deadline" ]; do
    l=$(leader)
    if [ -n "$l" ]; then echo "$l"; return 0; fi
    sleep 0.2
  done
  return 1
}

wait_port() {  # I: until the node answers PING (or has exited)
  local i=$1 k
  for k in $(seq 1 100); do
    [ -n "$(pid_of "$i")" ] || return 1
    if cli "$(port_of "$i")" PING 2>/dev/null | grep -q PONG; then return 0; fi
    sleep 0.1
  done
  return 1
}

cmd_up() {
  local want=${1:-3} i l started=0
  command -v redis-cli >/dev/null || scripts/deps.sh
  load_env
  if [ -n "$nodes" ]; then
    if [ -n "${1:-}" ] && [ "$want" != "$nodes" ]; then
      die "the cluster in $dir has $nodes nodes; 'scripts/cluster.sh clean' first to make one of $want"
    fi
  else
    [[ "$want" =~ ^[0-9]+$ ]] && [ "$want" -ge 1 ] && [ "$want" -le 9 ] || die "N must be 1..9"
    nodes=$want
    client_port=${URAFT_CLIENT_PORT:-6381}
    peer_port=${URAFT_PEER_PORT:-7001}
    storage=${URAFT_STORAGE:-wal}
    cluster_id=$(( (RANDOM << 16) | RANDOM ))
    save_env
  fi
  build
  for i in $(seq 1 "$nodes"); do
    if [ -z "$(pid_of "$i")" ]; then
      start_node "$i"
      started=$((started + 1))
    fi
  done
  for i in $(seq 1 "$nodes"); do
    wait_port "$i" || die "node $i did not start; its log ($(log_file "$i")) ends with:
$(tail -5 "$(log_file "$i")")"
  done
  [ "$started" -eq 0 ] && echo "cluster.sh: all $nodes nodes were already running"
  l=$(wait_leader 15) || die "no leader elected within 15 s (see scripts/cluster.sh logs I)"
  cmd_status
  echo
  echo "leader: node $l, client port $(port_of "$l")"
  echo "try:    redis-cli -p $(port_of "$l")${URAFT_REQUIREPASS:+ -a $URAFT_REQUIREPASS}   (any port works: followers forward to the leader)"
}

cmd_status() {
  need_cluster
  local i pid port info role term commit applied leader_id
  printf "%-5s %-7s %-8s %-6s %-9s %-5s %-8s %-8s %s\n" node pid port peer role term commit applied leader
  for i in $(seq 1 "$nodes"); do
    pid=$(pid_of "$i")
    port=$(port_of "$i")
    if [ -z "$pid" ]; then
      printf "%-5s %-7s %-8s %-6s %-9s\n" "$i" - "$port" $((peer_port + i - 1)) down
      continue
    fi
    info=$(cli "$port" INFO raft 2>/dev/null | tr -d '\r' || true)
    role=$(sed -n 's/^role://p' <<<"$info")
    term=$(sed -n 's/^term://p' <<<"$info")
    commit=$(sed -n 's/^commit_index://p' <<<"$info")
    applied=$(sed -n 's/^last_applied://p' <<<"$info")
    leader_id=$(sed -n 's/^leader_id://p' <<<"$info")
    [ -n "$leader_id" ] && [ "$leader_id" -ge 0 ] && leader_id=$((leader_id + 1)) || leader_id=-
    printf "%-5s %-7s %-8s %-6s %-9s %-5s %-8s %-8s %s\n" "$i" "$pid" "$port" \
      $((peer_port + i - 1)) "${role:-?}" "${term:-?}" "${commit:-?}" "${applied:-?}" "$leader_id"
  done
}

cmd_down() {
  need_cluster
  local i
  for i in $(seq 1 "$nodes"); do
    [ -n "$(pid_of "$i")" ] && kill -TERM "$(pid_of "$i")" 2>/dev/null || true
  done
  for i in $(seq 1 "$nodes"); do stop_node "$i" TERM; done
  echo "cluster.sh: all nodes stopped (data kept in $dir)"
}

cmd_transfer() {  # [I]
  need_cluster
  local l target=()
  if [ -n "${1:-}" ]; then check_index "$1"; target=("$(($1 - 1))"); fi
  l=$(wait_leader 10) || die "no leader"
  [ -z "${1:-}" ] || [ "$1" != "$l" ] || { echo "cluster.sh: node $l leads already"; return 0; }
  local reply
  reply=$(cli "$(port_of "$l")" RAFT.TRANSFER "${target[@]}")
  [ "$reply" = OK ] || die "node $l: $reply"
  l=$(wait_leader 10) || die "no leader after the transfer"
  echo "cluster.sh: node $l leads now"
}

cmd_bench() {
  need_cluster
  local l
  l=$(wait_leader 10) || die "no leader"
  local args=("$@")
  [ ${#args[@]} -eq 0 ] && args=(-t set,get -n 100000 -c 50 -P 16 -d 256 -r 100000)
  echo "redis-benchmark -p $(port_of "$l") ${args[*]}   (node $l, the leader)"
  if [ -n "${URAFT_REQUIREPASS:-}" ]; then args=(-a "$URAFT_REQUIREPASS" "${args[@]}"); fi
  redis-benchmark -p "$(port_of "$l")" "${args[@]}"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  up) cmd_up "$@" ;;
  status) cmd_status ;;
  down) cmd_down ;;
  kill) need_cluster; check_index "${1:-}"; pid=$(pid_of "$1")
    [ -n "$pid" ] || die "node $1 is not running"
    kill -KILL "$pid"; echo "cluster.sh: node $1 (pid $pid) killed" ;;
  stop) need_cluster; check_index "${1:-}"; stop_node "$1" TERM; echo "cluster.sh: node $1 stopped" ;;
  start) need_cluster; check_index "${1:-}"; build; start_node "$1"
    wait_port "$1" || die "node $1 did not start; see $(log_file "$1")"
    echo "cluster.sh: node $1 running on port $(port_of "$1")" ;;
  restart) need_cluster; check_index "${1:-}"; stop_node "$1" TERM; build; start_node "$1"
    wait_port "$1" || die "node $1 did not start; see $(log_file "$1")"
    echo "cluster.sh: node $1 restarted on port $(port_of "$1")" ;;
  logs) need_cluster; check_index "${1:-}"
    if [ "${2:-}" = -f ]; then tail -n 50 -F "$(log_file "$1")"; else tail -n "${LINES_SHOWN:-50}" "$(log_file "$1")"; fi ;;
  bench) cmd_bench "$@" ;;
  transfer) cmd_transfer "$@" ;;
  clean) load_env; [ -n "$nodes" ] && cmd_down; rm -rf "$dir"; echo "cluster.sh: removed $dir" ;;
  *) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = -h ] || exit 2 ;;
esac
