#!/usr/bin/env bash
# Two builds of the engine against each other on loopback, in ABBA order (A, B, B, A per round,
# each against a fresh one-thread churnlab-target on 4 ports), so that drift in the kernel's
# state and the machine's load falls on both alike. Prints each round's rates and the ratio B/A.
# Usage: bench/engine_ab.sh OLD_CHURN NEW_CHURN [ROUNDS] [MODEL_FLAGS]
#   e.g. bench/engine_ab.sh /tmp/old/churnlab-churn build/bin/churnlab-churn 4 --concurrency=64
# Each figure is 5 s (BENCH_SECONDS); traffic goes to 127.0.0.1 only. The same binary with
# THREADS_A=1 THREADS_B=2 compares engine workers (TARGET_THREADS: the target's, default 1):
#   THREADS_B=2 TARGET_THREADS=2 bench/engine_ab.sh build/bin/churnlab-churn build/bin/churnlab-churn
set -euo pipefail
cd "$(dirname "$0")/.."
a=${1:?usage: engine_ab.sh OLD_CHURN NEW_CHURN [ROUNDS] [MODEL_FLAGS]}
b=${2:?usage: engine_ab.sh OLD_CHURN NEW_CHURN [ROUNDS] [MODEL_FLAGS]}
rounds=${3:-4}
model=${4:---concurrency=64}
secs=${BENCH_SECONDS:-5}
source scripts/lib.sh

threads_a=${THREADS_A:-1}
threads_b=${THREADS_B:-1}
rate_of() {  # rate_of CHURN THREADS -> achieved conn/s against a fresh target
  local addr_file="$work/t$RANDOM" pid
  build/bin/churnlab-target --listen=127.0.0.1:0,127.0.0.1:0,127.0.0.1:0,127.0.0.1:0 \
    --threads="${TARGET_THREADS:-1}" --address-file="$addr_file" >/dev/null 2>&1 &
  pid=$!
  wait_file "$addr_file"
  "$1" --progress=false --threads="$2" --duration="${secs}s" --target="$(cat "$addr_file")" $model |
    awk '/achieved/ {print $2}'
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}
echo "A=$a (--threads=$threads_a) B=$b (--threads=$threads_b) $model, ${secs}s each"
sum=0
for round in $(seq "$rounds"); do
  a1=$(rate_of "$a" "$threads_a"); b1=$(rate_of "$b" "$threads_b")
  b2=$(rate_of "$b" "$threads_b"); a2=$(rate_of "$a" "$threads_a")
  ratio=$(awk -v a=$((a1 + a2)) -v b=$((b1 + b2)) 'BEGIN { printf "%.3f", b / a }')
  echo "round $round: A $a1 $a2  B $b1 $b2  B/A $ratio"
  sum=$(awk -v s="$sum" -v r="$ratio" 'BEGIN { print s + r }')
done
awk -v s="$sum" -v n="$rounds" 'BEGIN { printf "mean B/A %.3f\n", s / n }'
