#!/usr/bin/env bash
# The demo: installs what is missing, builds, then on this machine's loopback starts a
# coordinator, a target and four agents (source IPs 127.0.0.2-5), and runs the same workload
# twice through the control plane: from one agent, then spread over all four. Prints each run's
# progress and report, the run list, and the TIME_WAIT the runs left behind.
# Traffic goes to 127.0.0.1 only. Everything it starts is stopped before it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
BIN=build/bin
RATE=${DEMO_RATE:-4000}
SECS=${DEMO_SECONDS:-5}
source scripts/lib.sh

bg $BIN/churnlab-coordinator --grpc-listen=127.0.0.1:0 --address-file="$work/coordinator" \
  --http-listen=127.0.0.1:0 \
  --db="$work/runs.db" >"$work/coordinator.log" 2>&1
bg $BIN/churnlab-target --listen=127.0.0.1:0 --address-file="$work/target" --close=client \
  >"$work/target.log" 2>&1
wait_file "$work/coordinator" && wait_file "$work/target"
coordinator=$(cat "$work/coordinator")
target=$(cat "$work/target")
for i in 1 2 3 4; do
  bg $BIN/churnlab-agent --coordinator="$coordinator" --name="a$i" --source-ips="127.0.0.$((i + 1))" \
    >"$work/agent$i.log" 2>&1
done
for _ in $(seq 100); do
  [[ $($BIN/churnlab agents --coordinator="$coordinator" | grep -c '^a[1-4] ') -eq 4 ]] && break
  sleep 0.1
done
echo "== coordinator $coordinator, target $target (churnlab-target), agents:"
$BIN/churnlab agents --coordinator="$coordinator"

run() {
  echo
  echo "== $1"
  shift
  $BIN/churnlab run --coordinator="$coordinator" --target="$target" --rate="$RATE" \
    --duration="${SECS}s" --close=client-fin --threshold='error_rate < 0.01' "$@" || true
}
run "one agent, one source IP (127.0.0.2), $RATE conn/s for ${SECS}s" --agents=a1 --name=single
run "four agents, four source IPs, the same load" --name=spread

echo
echo "== runs kept in the coordinator's SQLite store"
$BIN/churnlab runs --coordinator="$coordinator"
port=${target##*:}
echo
echo "== TIME_WAIT toward the target's port, by source IP (the client closed first, so it keeps them):"
ss -Htan state time-wait "( dport = :$port )" | awk '{split($3, a, ":"); n[a[1]]++} END {for (ip in n) printf "   %-12s %d\n", ip, n[ip]}' | sort
read -r low high </proc/sys/net/ipv4/ip_local_port_range
echo "   Each source IP toward one ip:port has $((high - low + 1)) ports (ip_local_port_range $low-$high),"
echo "   each held 60 s in TIME_WAIT: about $(((high - low + 1) / 60)) new connections/s per source IP without"
echo "   reuse (tcp_tw_reuse=$(cat /proc/sys/net/ipv4/tcp_tw_reuse) here; 2 lets loopback reuse them). Four sources, four times the budget."
