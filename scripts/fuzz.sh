#!/usr/bin/env bash
# Builds the run-spec fuzz target with clang (libFuzzer, AddressSanitizer, UBSan) in build-fuzz/
# and runs it for SECONDS (default 60), seeded with the scenarios and tests/fuzz/regressions.
# A crash is saved in tests/fuzz/regressions/ and fails the script.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "fuzz.sh: SECONDS='$seconds': want a positive integer" >&2; exit 2; }
if [[ ! -f build-fuzz/build.ninja ]]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCHURNLAB_FUZZ=ON -DCHURNLAB_BUILD_TESTS=OFF -DCHURNLAB_BUILD_BENCH=OFF >/dev/null
fi
cmake --build build-fuzz --target run_spec_fuzz -j "$(nproc)"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
cp scenarios/*.json tests/fuzz/regressions/* "$corpus/" 2>/dev/null || true
echo "fuzz.sh: run_spec_fuzz for ${seconds}s"
build-fuzz/bin/run_spec_fuzz -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -print_final_stats=1 -artifact_prefix=tests/fuzz/regressions/ "$corpus" 2>&1 | tail -n 15
