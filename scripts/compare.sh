#!/usr/bin/env bash
# Writes per second and latency of three durable stores on this machine, back to back on
# 127.0.0.1, with 256-byte values and 1, 16, 64 and 256 closed-loop clients:
#   etcd   3 members (Debian's etcd-server, default fsync), load from bench/etcd_load:
#          C HTTP/1.1 keep-alive connections to the leader's gRPC-gateway, each with one
#          POST /v3/kv/put outstanding (base64 key "key:NNNNNNNNNNNN" from 100000, 256-byte value)
#   uraftd 3 nodes with the WAL (scripts/cluster.sh), load from redis-benchmark on the leader:
#          -t set -d 256 -c C -P 1 -r 100000 (C connections, one SET key:NNNNNNNNNNNN outstanding each)
#   redis  one redis-server, appendonly yes + appendfsync always, same redis-benchmark load
# plus the single-node floor: loopback TCP RTT and one fdatasync on the data directory's fs.
# Writes OUT/compare.md (the table) and OUT/compare.json, and prints the table.
#
#   scripts/compare.sh [--out DIR] [--duration S] [--repeat R] [--clients "1 16 64 256"]
#                      [--systems "etcd uraftd redis"]
#
# Installs etcd-server and redis-server when missing. Ports are picked free (never the
# defaults 6381-6383/7001-7003); data lives in a temp dir under OUT; every process this script
# starts is stopped on exit. Environment: URAFT_BUILD_DIR (default ./build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

out=$root/build/compare
duration=5
repeat=1
clients="1 16 64 256"
systems="etcd uraftd redis"
payload=256
keyspace=100000
build_dir=${URAFT_BUILD_DIR:-$root/build/release}

die() { echo "compare.sh: $*" >&2; exit 1; }
say() { echo "compare.sh: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --systems) systems=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$duration" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--duration must be a number of seconds"
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer"
for c in $clients; do [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "client count '$c' is not a positive integer"; done
for s in $systems; do
  case "$s" in etcd|uraftd|redis) ;; *) die "unknown system '$s' (etcd, uraftd, redis)" ;; esac
done

# --- dependencies and builds ---------------------------------------------------------------
need_pkg() {  # command, package
  command -v "$1" >/dev/null && return 0
  say "installing $2"
  scripts/deps.sh "$2"
}
need_pkg etcd etcd-server
need_pkg etcdctl etcd-client
need_pkg redis-server redis-server
need_pkg redis-benchmark redis-tools

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/uraft-ccache}
if [ ! -f "$build_dir/build.ninja" ]; then
  say "configuring $build_dir"
  meson setup "$build_dir" --buildtype=release >/dev/null
fi
say "building uraftd and etcd_load in $build_dir"
ninja -C "$build_dir" kv/uraftd bench/etcd_load >/dev/null || die "build failed"
etcd_load=$build_dir/bench/etcd_load

mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d "$out/run.XXXXXX")  # on the same file system as OUT, not a tmpfs
results=$tmp/results.tsv
: >"$results"

# --- processes: every pid we start, stopped on exit -----------------------------------------
pids=()
uraftd_dir=""
# Whether process PID runs (an exited child not yet reaped does not).
alive() {
  local state
  state=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null || true)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
cleanup() {
  local p
  if [ -n "$uraftd_dir" ] && [ -f "$uraftd_dir/cluster.env" ]; then
    URAFT_CLUSTER_DIR=$uraftd_dir URAFT_BUILD_DIR=$build_dir scripts/cluster.sh down >/dev/null 2>&1 || true
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do alive "$p" || break; sleep 0.1; done
    alive "$p" && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null || true
  done
  pids=()
  uraftd_dir=""
}
trap 'cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# A run of `count` consecutive free TCP ports on 127.0.0.1, below the ephemeral range (so
# client connections do not take them) and away from the defaults 6381-6383/7001-7003.
free_ports() {  # count
  python3 - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(1000):
    base = random.randrange(20000, 30000 - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket(); socks.append(s); s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    print(" ".join(str(p) for p in range(base, base + n)))
    break
else:
    sys.exit("no free ports")
EOF
}

record() {  # system clients rep writes_per_s p50_ms p99_ms p999_ms
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$@" >>"$results"
  say "$(printf "%-6s C=%-4s rep %s: %8.0f writes/s  p50 %7.3f ms  p99 %7.3f ms" "$1" "$2" "$3" "$4" "$5" "$6")"
}

# redis-benchmark SET at C clients for about `duration` seconds: a short calibration run
# (which also warms up) sizes the request count.
redis_point() {  # system port clients rep
  local sys=$1 port=$2 c=$3 rep=$4 n csv rps
  local args=(-h 127.0.0.1 -p "$port" -t set -d "$payload" -c "$c" -P 1 -r "$keyspace" --csv)
  n=$((c * 20 > 500 ? c * 20 : 500))
  csv=$(redis-benchmark "${args[@]}" -n "$n" 2>/dev/null | tail -1)
  rps=$(cut -d, -f2 <<<"$csv" | tr -d '"')
  n=$(python3 -c "print(max(int(float('$rps') * $duration), $c * 10, 200))")
  csv=$(redis-benchmark "${args[@]}" -n "$n" 2>/dev/null | tail -1)
  # "SET","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"$(tr -d '"' <<<"$csv")"
  [ -n "$p99" ] || die "redis-benchmark against $sys gave no result: $csv"
  record "$sys" "$c" "$rep" "$rps" "$p50" "$p99" ""
}

# --- etcd: 3 members -------------------------------------------------------------------------
run_etcd() {  # rep
  local rep=$1 ports i cluster="" leader_url="" c
  read -ra ports <<<"$(free_ports 6)"
  for i in 0 1 2; do cluster+="${cluster:+,}m$i=http://127.0.0.1:${ports[$((3 + i))]}"; done
  for i in 0 1 2; do
    mkdir -p "$tmp/etcd/m$i"
    etcd --name "m$i" --data-dir "$tmp/etcd/m$i" \
      --listen-client-urls "http://127.0.0.1:${ports[$i]}" \
      --advertise-client-urls "http://127.0.0.1:${ports[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${ports[$((3 + i))]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${ports[$((3 + i))]}" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token "compare-$$" --log-level warn \
      >"$tmp/etcd/m$i.log" 2>&1 </dev/null &
    pids+=($!)
  done
  for _ in $(seq 1 100); do
    for i in 0 1 2; do
      if ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:${ports[$i]}" endpoint status -w json 2>/dev/null |
        python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["Status"]; sys.exit(0 if s["leader"]==s["header"]["member_id"] else 1)' 2>/dev/null; then
        leader_url=127.0.0.1:${ports[$i]}
        break 2
      fi
    done
    sleep 0.2
  done
  [ -n "$leader_url" ] || die "etcd elected no leader within 20 s; see $tmp/etcd/m*.log"
  say "etcd leader at $leader_url"
  for c in $clients; do
    local json
    json=$("$etcd_load" --endpoint "$leader_url" --clients "$c" --payload "$payload" \
      --keyspace "$keyspace" --duration "$duration" --warmup 1) || die "etcd_load failed: $json"
    read -r wps p50 p99 p999 < <(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["writes_per_s"], r["p50_ms"], r["p99_ms"], r["p999_ms"])' "$json")
    record etcd "$c" "$rep" "$wps" "$p50" "$p99" "$p999"
  done
  cleanup
}

# --- uraftd: 3 nodes, WAL --------------------------------------------------------------------
run_uraftd() {  # rep
  local rep=$1 ports port c
  read -ra ports <<<"$(free_ports 6)"
  uraftd_dir=$tmp/uraftd
  export URAFT_CLUSTER_DIR=$uraftd_dir URAFT_BUILD_DIR=$build_dir URAFT_STORAGE=wal \
    URAFT_LOG_LEVEL=warn
  URAFT_CLIENT_PORT=${ports[0]} URAFT_PEER_PORT=${ports[3]} scripts/cluster.sh up 3 >"$tmp/uraftd.up" 2>&1 ||
    { cat "$tmp/uraftd.up" >&2; die "uraftd cluster did not come up"; }
  port=$(sed -n 's/^leader: node [0-9]*, client port \([0-9]*\).*/\1/p' "$tmp/uraftd.up")
  [ -n "$port" ] || die "no uraftd leader: $(cat "$tmp/uraftd.up")"
  say "uraftd leader at 127.0.0.1:$port"
  for c in $clients; do redis_point uraftd "$port" "$c" "$rep"; done
  cleanup
}

# --- Redis: one node, appendfsync always -----------------------------------------------------
run_redis() {  # rep
  local rep=$1 port c
  port=$(free_ports 1)
  mkdir -p "$tmp/redis"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp/redis" --appendonly yes \
    --appendfsync always --save "" --daemonize no --logfile "$tmp/redis/redis.log" </dev/null &
  pids+=($!)
  for _ in $(seq 1 50); do
    redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  for c in $clients; do redis_point redis "$port" "$c" "$rep"; done
  cleanup
}

# --- the run ---------------------------------------------------------------------------------
probe=$("$etcd_load" --probe "$tmp")
say "floor: $probe"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for rep in $(seq 1 "$repeat"); do
  for s in $systems; do "run_$s" "$rep"; done
  rm -rf "$tmp/etcd" "$tmp/uraftd" "$tmp/redis"
done

fs=$(findmnt -n -o FSTYPE -T "$tmp" 2>/dev/null || stat -f -c %T "$tmp")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
python3 - "$results" "$out" "$probe" "$started" "$(nproc)" "$(uname -r)" "$fs" "$cpu" \
  "$duration" "$repeat" "$payload" "$(etcd --version | head -1)" \
  "$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')" <<'EOF'
import json, statistics, sys
(results, out, probe, started, nproc, kernel, fs, cpu, duration, repeat, payload,
 etcd_version, redis_version) = sys.argv[1:]
probe = json.loads(probe)
runs = {}
for line in open(results):
    sysname, c, rep, wps, p50, p99, p999 = line.rstrip("\n").split("\t")
    runs.setdefault((sysname, int(c)), []).append(
        (float(wps), float(p50), float(p99), float(p999) if p999 else None))
points = {}
for (sysname, c), rs in runs.items():
    med = lambda i: statistics.median(r[i] for r in rs)
    p999 = [r[3] for r in rs if r[3] is not None]
    points.setdefault(sysname, {})[c] = {
        "writes_per_s": med(0), "p50_ms": med(1), "p99_ms": med(2),
        "p999_ms": statistics.median(p999) if p999 else None, "runs": len(rs)}
clients = sorted({c for (_, c) in runs})
floor_ms = (probe["loopback_rtt_us"] + probe["fdatasync_us"]) / 1000
device_floor_ms = (probe["loopback_rtt_us"] + probe["device_flush_us"]) / 1000
ratios = {}
for c in clients:
    u, e = points.get("uraftd", {}).get(c), points.get("etcd", {}).get(c)
    if u and e:
        ratios[c] = {"writes": u["writes_per_s"] / e["writes_per_s"],
                     "p99": u["p99_ms"] / e["p99_ms"]}
floors = {}
for c in (64, 256):
    if c in ratios:
        floors[f"uraftd_3x_etcd_writes_at_{c}"] = ratios[c]["writes"] >= 3
        floors[f"uraftd_p99_le_etcd_at_{c}"] = ratios[c]["p99"] <= 1
if 1 in points.get("uraftd", {}):
    floors["uraftd_1_client_p50_le_2x_floor"] = points["uraftd"][1]["p50_ms"] <= 2 * floor_ms
    if probe["device_flush_us"] > 0:
        floors["uraftd_1_client_p50_le_2x_device_floor"] = (
            points["uraftd"][1]["p50_ms"] <= 2 * device_floor_ms)
doc = {"started": started, "machine": {"nproc": int(nproc), "kernel": kernel, "fs": fs,
       "cpu": cpu}, "duration_s": float(duration), "repeat": int(repeat),
       "payload_bytes": int(payload), "etcd_version": etcd_version,
       "redis_version": redis_version, "baseline": {**probe, "floor_ms": floor_ms, "device_floor_ms": device_floor_ms},
       "points": {s: {str(c): v for c, v in sorted(p.items())} for s, p in points.items()},
       "ratios_uraftd_over_etcd": {str(c): v for c, v in ratios.items()}, "floors": floors}
json.dump(doc, open(f"{out}/compare.json", "w"), indent=2)

systems = [s for s in ("etcd", "uraftd", "redis") if s in points]
lines = ["| clients | " + " | ".join(f"{s} writes/s | {s} p50 ms | {s} p99 ms" for s in systems)
         + (" | uraftd/etcd writes | uraftd/etcd p99 |" if ratios else " |"),
         "|---:|" + "---:|" * (3 * len(systems) + (2 if ratios else 0))]
for c in clients:
    cells = []
    for s in systems:
        p = points[s].get(c)
        cells += [f"{p['writes_per_s']:,.0f}", f"{p['p50_ms']:.2f}", f"{p['p99_ms']:.2f}"] if p else ["-"] * 3
    if ratios:
        r = ratios.get(c)
        cells += [f"{r['writes']:.2f}x", f"{r['p99']:.2f}x"] if r else ["-", "-"]
    lines.append(f"| {c} | " + " | ".join(cells) + " |")
lines.append("")
lines.append(f"Floor for one client: loopback RTT {probe['loopback_rtt_us']:.0f} us + one fdatasync "
             f"{probe['fdatasync_us']:.0f} us (median of a blocking pwrite+fdatasync; fastest "
             f"{probe['fdatasync_min_us']:.0f} us) = {floor_ms:.2f} ms; with the device's own time "
             f"per flush ({probe['device_flush_us']:.0f} us) instead: {device_floor_ms:.2f} ms. "
             f"Data on {fs}; medians of {repeat} run(s) of {duration} s per point; {nproc} CPUs, "
             f"kernel {kernel}; started {started}.")
for k, v in floors.items():
    lines.append(f"- {k}: {'holds' if v else 'FAILS'}")
table = "\n".join(lines) + "\n"
open(f"{out}/compare.md", "w").write(table)
print(table, end="")
EOF
say "wrote $out/compare.md and $out/compare.json"
