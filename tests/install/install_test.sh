#!/usr/bin/env bash
# Installs the current build into a temporary DESTDIR, then builds the examples the way an
# outside project would: only the installed headers, library and uraft-core.pc (found through
# PKG_CONFIG_PATH, relocated with PKG_CONFIG_SYSROOT_DIR), and runs them. Also compiles each
# installed header alone, to prove the installed tree is self-contained.
# Usage: install_test.sh <source root> <build root>
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uraft-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest

fail() { echo "install_test: $*" >&2; exit 1; }

# --no-rebuild: meson test has already built everything, and a concurrent ninja in the
# same build directory is the last thing a test should start.
meson install -C "$build" --no-rebuild --destdir "$dest" --quiet >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "meson install failed"; }

pc=$(find "$dest" -name uraft-core.pc -print -quit)
[ -n "$pc" ] || fail "no uraft-core.pc under $dest"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
export PKG_CONFIG_SYSROOT_DIR=$dest  # The .pc names the real prefix; the files are in $dest.
pkg-config --exists --print-errors uraft-core || fail "pkg-config cannot resolve uraft-core"
read -ra cflags <<<"$(pkg-config --cflags uraft-core)"
read -ra libs <<<"$(pkg-config --libs uraft-core)"
libdir=$(pkg-config --variable=libdir uraft-core)
[ -f "$libdir/liburaft-core.so" ] || fail "liburaft-core.so not in $libdir"
incdir=$(pkg-config --variable=includedir uraft-core)/uraft
[ -f "$incdir/core/loop.h" ] || fail "core/loop.h not in $incdir"
echo "installed: $libdir/liburaft-core.so, headers in $incdir"
echo "pkg-config: ${cflags[*]} ${libs[*]}"

# An outside project compiles with g++. If this build is sanitized, its library needs the
# sanitizer runtime of the compiler that built it: mirror the build's compiler and flags.
read -r sanitize build_cxx < <(python3 - "$build" <<'PY'
import json, sys
info = sys.argv[1] + "/meson-info/"
opts = {o["name"]: o["value"] for o in json.load(open(info + "intro-buildoptions.json"))}
exe = next(src["compiler"] for target in json.load(open(info + "intro-targets.json"))
           for src in target["target_sources"] if src.get("language") == "cpp")
print(opts.get("b_sanitize", "none"), [e for e in exe if not e.endswith("ccache")][0])
PY
)
if [ -z "$sanitize" ] || [ -z "$build_cxx" ]; then fail "cannot read $build/meson-info"; fi
cxx=g++
san=()
if [ "$sanitize" != none ]; then
  cxx=$build_cxx
  san=(-fsanitize="$sanitize")
fi
warn=(-std=c++20 -Wall -Wextra -Wpedantic -Werror)

# Copies, so a quoted include cannot find anything next to the sources in the tree.
mkdir -p "$tmp/work"
cd "$tmp/work"

# Each installed header alone.
for h in "$incdir"/core/*.h; do
  name=core/$(basename "$h")
  printf '#include "%s"\n' "$name" >"header_$(basename "$h" .h).cc"
done
printf '%s\0' header_*.cc | xargs -0 -P "$(nproc)" -I{} \
  "$cxx" "${warn[@]}" "${san[@]}" "${cflags[@]}" -fsyntax-only {} ||
  fail "an installed header does not compile alone"
echo "every installed header compiles alone"

for example in run_main embed_poll; do
  cp "$src/examples/$example.cpp" .
  "$cxx" "${warn[@]}" -O1 "${san[@]}" "$example.cpp" -MD -MF "$example.d" "${cflags[@]}" "${libs[@]}" \
    -Wl,-rpath,"$libdir" -o "$example" || fail "$example does not build against the install"
  # Nothing may come from the source or build tree.
  if grep -F -e "$src/" -e "$build/" "$example.d" >"$example.leaks"; then
    fail "$example used headers outside the install: $(head -3 "$example.leaks")"
  fi
  ldd "$example" >"$example.ldd"  # Not piped into grep -q: pipefail would see ldd's SIGPIPE.
  grep -q "$libdir/liburaft-core.so" "$example.ldd" || fail "$example is not linked to $libdir"
  echo "== $example (built with $cxx against the install)"
  timeout 20 "./$example" || fail "$example exited with status $?"
done
echo "install_test: ok"
