#!/usr/bin/env bash
# Builds the run-spec fuzz target with clang (libFuzzer, AddressSanitizer, UBSan) in build-fuzz/
# and runs it for SECONDS (default 60), seeded with the scenarios and tests/fuzz/regressions.
# A crash is saved in tests/fuzz/regressions/ and fails the script.
# A run that found nothing is recorded (build-fuzz/clean-run: the sha256 of the fuzz binary, the
# seeds and this script, and its seconds); when they are the same as then, and that run was as
# long, the fuzzing is not repeated (a change elsewhere, in analysis/ say, does not change what
# this target runs). --again runs it all the same.
# Usage: scripts/fuzz.sh [--again] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
again=0
if [[ ${1:-} == --again ]]; then
  again=1
  shift
fi
seconds=${1:-60}
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "fuzz.sh: SECONDS='$seconds': want a positive integer" >&2; exit 2; }
if [[ ! -f build-fuzz/build.ninja ]]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCHURNLAB_FUZZ=ON -DCHURNLAB_BUILD_TESTS=OFF -DCHURNLAB_BUILD_BENCH=OFF >/dev/null
fi
cmake --build build-fuzz --target run_spec_fuzz -j "$(nproc)"
seeds=(scenarios/*.json)
for f in tests/fuzz/regressions/*; do [[ -f $f ]] && seeds+=("$f"); done
# The key: what the fuzzing would run (the binary, its seeds, and this script's flags).
key=$(sha256sum build-fuzz/bin/run_spec_fuzz scripts/fuzz.sh "${seeds[@]}" | sha256sum | cut -d' ' -f1)
record=build-fuzz/clean-run
if ((!again)) && [[ -f $record ]]; then
  read -r last_key last_seconds <"$record" || true
  if [[ ${last_key:-} == "$key" && ${last_seconds:-0} -ge $seconds ]]; then
    echo "fuzz.sh: run_spec_fuzz and its ${#seeds[@]} seeds are unchanged since a clean" \
      "${last_seconds}s run ($record); not fuzzed again (--again to run it anyway)"
    exit 0
  fi
fi
rm -f "$record"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
cp "${seeds[@]}" "$corpus/"
echo "fuzz.sh: run_spec_fuzz for ${seconds}s"
# Under pipefail a finding (the fuzzer's exit) ends the script here, before the record.
build-fuzz/bin/run_spec_fuzz -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -print_final_stats=1 -artifact_prefix=tests/fuzz/regressions/ "$corpus" 2>&1 | tail -n 15
echo "$key $seconds" >"$record"
