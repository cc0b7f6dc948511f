#!/usr/bin/env bash
# Installs the Debian 12 packages churnlab needs to build, test and benchmark.
# Idempotent: packages already present are skipped, and nothing runs apt-get when all are there.
# Usage: scripts/install-deps.sh [--bench]   (--bench adds nginx and wrk for bench/)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang-format
  libabsl-dev libgtest-dev libgmock-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libsqlite3-dev libcpp-httplib-dev
  iproute2 procps
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(libbenchmark-dev nginx-light wrk)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
