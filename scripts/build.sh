#!/usr/bin/env bash
# Configures (once) and builds churnlab into build/; binaries land in build/bin/.
# Usage: scripts/build.sh [TARGET...]   (no target: everything, the test suites included;
#        the demo names the five binaries it runs)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -f build/build.ninja ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build build -j "$(nproc)" "${targets[@]}"
