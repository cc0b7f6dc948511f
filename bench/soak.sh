#!/usr/bin/env bash
# The soak: one churn run at a steady rate on loopback for SOAK_SECONDS (default 600), with a
# coordinator, a target (attached as an observer) and one agent. Every 30 s it samples the
# resident memory and open fds of the agent and the coordinator; at the end it prints the
# table and the growth from the first sample after warm-up (60 s) to the last, and fails when
# fds grew or memory grew by more than 10%.
# Usage: bench/soak.sh   (SOAK_SECONDS=N SOAK_RATE=N to change; traffic to 127.0.0.1 only)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SOAK_SECONDS:-600}
RATE=${SOAK_RATE:-2000}
EVERY=30
bash scripts/build.sh >/dev/null
BIN=build/bin
source scripts/lib.sh

bg $BIN/churnlab-coordinator --grpc-listen=127.0.0.1:0 --http-listen= \
  --address-file="$work/coordinator" --db="$work/runs.db" >"$work/coordinator.log" 2>&1
coordinator_pid=${pids[-1]}
wait_file "$work/coordinator"
coordinator=$(cat "$work/coordinator")
bg $BIN/churnlab-target --listen=127.0.0.1:0,127.0.0.1:0,127.0.0.1:0,127.0.0.1:0 \
  --address-file="$work/target" --coordinator="$coordinator" --name=target >"$work/target.log" 2>&1
wait_file "$work/target"
bg $BIN/churnlab-agent --coordinator="$coordinator" --name=soak --source-ips=127.0.0.2,127.0.0.3 \
  >"$work/agent.log" 2>&1
agent_pid=${pids[-1]}
for _ in $(seq 50); do
  $BIN/churnlab agents --coordinator="$coordinator" | grep -q '^soak ' && break
  sleep 0.1
done

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
echo "machine: $(nproc) cores, kernel $(uname -r); soak: ${SECS}s at ${RATE} conn/s, 2 source IPs x 4 ports"
$BIN/churnlab run --coordinator="$coordinator" --target="$(cat "$work/target")" --rate="$RATE" \
  --duration="${SECS}s" --name=soak --report="$work/soak.json" >"$work/run.log" 2>&1 &
run_pid=$!
printf '%6s %14s %10s %16s %12s\n' t_s agent_rss_kib agent_fds coordinator_rss coord_fds
samples=()
for ((t = 0; t <= SECS; t += EVERY)); do
  line=$(printf '%6d %14d %10d %16d %12d' "$t" "$(rss_kib $agent_pid)" "$(fds $agent_pid)" \
    "$(rss_kib $coordinator_pid)" "$(fds $coordinator_pid)")
  echo "$line"
  samples+=("$line")
  ((t + EVERY <= SECS)) && sleep $EVERY
done
wait $run_pid || true
grep -E "^ +(achieved|attempted|failed|requested)" "$work/run.log" || tail -n 20 "$work/run.log"
# After the run: in-flight connections are gone, so fds must be back to where they started.
printf '%6s %14d %10d %16d %12d  (after the run)\n' end "$(rss_kib $agent_pid)" \
  "$(fds $agent_pid)" "$(rss_kib $coordinator_pid)" "$(fds $coordinator_pid)"

first=$(printf '%s\n' "${samples[@]}" | awk '$1 >= 60' | head -n 1)
last=${samples[-1]}
awk -v a="$first" -v b="$last" 'BEGIN {
  split(a, x); split(b, y)
  printf "growth from %ds to %ds: agent RSS %+.1f%%, coordinator RSS %+.1f%%, agent fds %+d, coordinator fds %+d\n",
    x[1], y[1], 100 * (y[2] - x[2]) / x[2], 100 * (y[4] - x[4]) / x[4], y[3] - x[3], y[5] - x[5]
  bad = (y[2] > 1.1 * x[2]) || (y[4] > 1.1 * x[4]) || (y[5] > x[5])
  if (bad) { print "soak: FAILED: growth beyond noise"; exit 1 }
  print "soak: memory flat, no fd leak"
}'
