#!/usr/bin/env bash
# Installs the Debian packages uraft needs, when they are missing. Idempotent; silent when
# everything is present. Usage: scripts/deps.sh [extra-package ...]
set -euo pipefail

packages=(
  build-essential g++ meson ninja-build pkg-config ccache python3
  liburing-dev libboost-context-dev doctest-dev
  libfmt-dev libcli11-dev libspdlog-dev libbenchmark-dev
  libhiredis-dev redis-tools redis-server
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/uraft-deps.log 2>&1; then
  $sudo apt-get update -qq >>/tmp/uraft-deps.log 2>&1
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/uraft-deps.log 2>&1 || {
    echo "deps: apt-get install failed; see /tmp/uraft-deps.log" >&2
    tail -20 /tmp/uraft-deps.log >&2
    exit 1
  }
fi
