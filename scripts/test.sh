#!/usr/bin/env bash
# Builds and runs every uraft test suite:
#   build/release  optimized build: all suites (unit, sim, install, e2e);
#   build/asan     AddressSanitizer + UndefinedBehaviorSanitizer: unit and sim suites;
#   build/fuzz     clang + libFuzzer: 30 s on the frame decoder, 10 s on the RESP parser (parallel).
# Warnings are errors. The last line is "N passed, M failed", counting doctest test cases
# (a test program without doctest counts as one case). Exit status is non-zero on failure.
# Environment: URAFT_BUILD_ROOT (default ./build), URAFT_SKIP_ASAN=1 to skip the ASan pass,
# URAFT_SKIP_FUZZ=1 to skip the bounded fuzz run (done only when clang++ is installed),
# URAFT_CRASH_CYCLES=N for N SIGKILL cycles in the storage crash test (default 50).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/deps.sh || exit 1

build_root=${URAFT_BUILD_ROOT:-$root/build}
jobs=$(nproc)
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/uraft-ccache}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

configure() {  # dir, meson options...
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
  else
    mkdir -p "$(dirname "$dir")"
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
  fi || { cat "$dir.setup.log"; echo "0 passed, 1 failed"; exit 1; }
}

build() {  # dir
  ninja -C "$1" -j "$jobs" >"$1.build.log" 2>&1 || {
    grep -E "error|Error|FAILED" -A5 "$1.build.log" | head -80; tail -20 "$1.build.log"
    echo "0 passed, 1 failed"; exit 1
  }
}

status=0
run_suites() {  # dir, meson test arguments...
  local dir=$1; shift
  echo "== tests in $dir $*"
  meson test -C "$dir" --num-processes "$jobs" --print-errorlogs "$@" || status=1
}

configure "$build_root/release" --buildtype=release
build "$build_root/release"
run_suites "$build_root/release"

if [ "${URAFT_SKIP_ASAN:-0}" != 1 ]; then
  configure "$build_root/asan" --buildtype=debug -Doptimization=1 \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false
  build "$build_root/asan"
  run_suites "$build_root/asan" --suite unit --suite sim
fi

dirs=("$build_root/release")
[ "${URAFT_SKIP_ASAN:-0}" != 1 ] && dirs+=("$build_root/asan")

# The libFuzzer targets (frame decoder, RESP parser), for a bounded time, when clang is on the machine.
if command -v clang++ >/dev/null 2>&1 && [ "${URAFT_SKIP_FUZZ:-0}" != 1 ]; then
  CXX=clang++ configure "$build_root/fuzz" -Dfuzz=true -Dbenchmarks=false -Dexamples=false
  ninja -C "$build_root/fuzz" tests/net/fuzz_frame tests/kv/fuzz_resp >"$build_root/fuzz.build.log" 2>&1 || {
    tail -20 "$build_root/fuzz.build.log"; echo "0 passed, 1 failed"; exit 1
  }
  run_suites "$build_root/fuzz" --no-rebuild --suite fuzz
  dirs+=("$build_root/fuzz")
fi
# deps.sh installs redis-server: the byte-for-byte differential test against it must run.
python3 scripts/count_tests.py --must-run kv_redis_diff "${dirs[@]}" || status=1
exit $status
