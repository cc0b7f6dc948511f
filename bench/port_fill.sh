#!/usr/bin/env bash
# connect() as a source's port range fills: bind mode no-port (the kernel searches the range
# for a free port inside connect()) against bind mode engine (the engine picks the port), in
# ABBA order. Each run is churnlab-churn in a network namespace of its own with a 10,000-port
# range and tcp_tw_reuse off, opening FILL% of the range's ports toward one churnlab-target at
# RATE/s, each closed client-first so it stays in TIME_WAIT: the range is FILL% full at the end.
# Prints, per run, the time inside connect() (p50, p99, max: the report's connect_call), the
# time to fill, and the failures; then the p99 ratio engine / no-port.
# Usage: sudo bench/port_fill.sh [FILL_PERCENT=98] [RATE=1000] [ROUNDS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
fill=${1:-98}
rate=${2:-1000}
rounds=${3:-2}
BIN=${BIN:-build/bin}
[[ $(id -u) == 0 ]] || { echo "port_fill: needs root (network namespaces)" >&2; exit 2; }
[[ $fill =~ ^[0-9]+$ ]] && ((fill >= 1 && fill <= 99)) || { echo "port_fill: FILL 1..99" >&2; exit 2; }
[[ $rate =~ ^[0-9]+$ ]] && ((rate >= 100 && rate <= 20000)) || { echo "port_fill: RATE 100..20000" >&2; exit 2; }
source scripts/lib.sh
connections=$((10000 * fill / 100))
trap 'exit 1' INT TERM  # the EXIT trap then removes the namespaces (make_namespace)

# run MODE -> "p50 p99 max seconds failed" of one filling run in a fresh namespace.
run() {
  local ns="cl-fill-$$-$1-$RANDOM" out
  out="$work/$ns.json"
  make_namespace "$ns"
  ip netns exec "$ns" sysctl -q -w net.ipv4.ip_local_port_range="50000 59999" \
    net.ipv4.tcp_tw_reuse=0 >/dev/null
  ip netns exec "$ns" "$BIN/churnlab-target" --listen=127.0.0.1:9000 --threads=1 \
    --address-file="$work/$ns.addr" >/dev/null 2>&1 &
  wait_file "$work/$ns.addr"
  timeout 300 ip netns exec "$ns" "$BIN/churnlab-churn" --target=127.0.0.1:9000 \
    --source-ips=127.0.0.1 --bind="$1" --rate="$rate" --max-connections="$connections" \
    --max-in-flight=1000 --duration=$((connections / rate + 30))s --progress=false --json >"$out"
  python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["latency"]["connect_call"]
t = r["totals"]
print("%.3f %.3f %.3f %.1f %d" % (c.get("p50_ms", 0), c.get("p99_ms", 0), c.get("max_ms", 0),
                                   r.get("duration_s", 0), t.get("attempted", 0) - t.get("succeeded", 0)))
PY
  drop_namespace "$ns"
}

echo "machine: $(nproc) cores, kernel $(uname -r); $connections connections ($fill% of 10,000 ports) at $rate/s"
printf '%-8s %10s %10s %10s %8s %7s\n' mode "p50 ms" "p99 ms" "max ms" "fill s" failed
declare -A p99_sum=([no-port]=0 [engine]=0)
for round in $(seq "$rounds"); do
  for mode in no-port engine engine no-port; do
    read -r p50 p99 max secs failed < <(run "$mode")
    printf '%-8s %10s %10s %10s %8s %7s\n' "$mode" "$p50" "$p99" "$max" "$secs" "$failed"
    p99_sum[$mode]=$(awk -v s="${p99_sum[$mode]}" -v x="$p99" 'BEGIN { print s + x }')
  done
done
awk -v e="${p99_sum[engine]}" -v n="${p99_sum[no-port]}" \
  'BEGIN { printf "connect() p99, engine / no-port (summed over the runs): %.4f\n", (n > 0 ? e / n : 0) }'
