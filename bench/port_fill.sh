#!/usr/bin/env bash
# connect() as a source's port range fills: bind mode no-port (the kernel searches the range
# for a free port inside connect()) against bind mode engine (the engine picks the port), in
# ABBA order. Each run is churnlab-churn in a network namespace of its own with a 10,000-port
# range and tcp_tw_reuse off, opening FILL% of the range's ports toward one churnlab-target at
# RATE/s, each closed client-first so it stays in TIME_WAIT: the range is FILL% full at the end.
# Prints, per run, the time inside connect() (p50, p99, max: the report's connect_call), the
# time to fill, and the failures; then the p99 ratio engine / no-port.
# PATH is where the packets go:
#   loopback  the target in the same namespace (127.0.0.1): a non-blocking connect() returns
#             with the connection ESTABLISHED, the whole handshake run in softirq inside the
#             call, so the call's time is the port search plus a handshake;
#   veth      the target in a second namespace behind a veth pair whose received packets are
#             steered to the other core (RPS), the client on one core and the target on the
#             other: connect() returns with the SYN sent, as it does across a network, so the
#             call's time is the port search plus sending a SYN. Needs 2 cores.
# Usage: sudo bench/port_fill.sh [FILL_PERCENT=98] [RATE=1000] [ROUNDS=2] [PATH=loopback|veth]
set -euo pipefail
cd "$(dirname "$0")/.."
fill=${1:-98}
rate=${2:-1000}
rounds=${3:-2}
path=${4:-loopback}
BIN=${BIN:-build/bin}
[[ $(id -u) == 0 ]] || { echo "port_fill: needs root (network namespaces)" >&2; exit 2; }
[[ $fill =~ ^[0-9]+$ ]] && ((fill >= 1 && fill <= 99)) || { echo "port_fill: FILL 1..99" >&2; exit 2; }
[[ $rate =~ ^[0-9]+$ ]] && ((rate >= 100 && rate <= 20000)) || { echo "port_fill: RATE 100..20000" >&2; exit 2; }
[[ $rounds =~ ^[0-9]+$ ]] && ((rounds >= 1 && rounds <= 20)) || { echo "port_fill: ROUNDS 1..20" >&2; exit 2; }
[[ $path == loopback || $path == veth ]] || { echo "port_fill: PATH '$path' is not loopback or veth" >&2; exit 2; }
[[ $path == loopback ]] || (($(nproc) >= 2)) || { echo "port_fill: PATH veth needs 2 cores" >&2; exit 2; }
source scripts/lib.sh
connections=$((10000 * fill / 100))
trap 'exit 1' INT TERM  # the EXIT trap then removes the namespaces (make_namespace)

# run MODE -> "p50 p99 max seconds failed" of one filling run in fresh namespaces.
run() {
  local ns="cl-fill-$$-$1-$RANDOM" out target=127.0.0.1 client=127.0.0.1 server_ns on_client=() on_server=()
  out="$work/$ns.json"
  make_namespace "$ns"
  server_ns=$ns
  if [[ $path == veth ]]; then
    # The target's namespace, a veth pair between them (going with the namespaces), and every
    # packet either end receives handled on core 1 (rps_cpus 2), the client on core 0.
    server_ns="$ns-s"
    make_namespace "$server_ns"
    ip link add "cf$$a" netns "$ns" type veth peer name "cf$$b" netns "$server_ns"
    ip -n "$ns" addr add 10.98.0.1/24 dev "cf$$a"
    ip -n "$server_ns" addr add 10.98.0.2/24 dev "cf$$b"
    ip -n "$ns" link set "cf$$a" up
    ip -n "$server_ns" link set "cf$$b" up
    ip netns exec "$ns" sh -c "echo 2 >/sys/class/net/cf$$a/queues/rx-0/rps_cpus"
    ip netns exec "$server_ns" sh -c "echo 2 >/sys/class/net/cf$$b/queues/rx-0/rps_cpus"
    client=10.98.0.1
    target=10.98.0.2
    on_client=(taskset -c 0)
    on_server=(taskset -c 1)
  fi
  ip netns exec "$ns" sysctl -q -w net.ipv4.ip_local_port_range="50000 59999" \
    net.ipv4.tcp_tw_reuse=0 >/dev/null
  ip netns exec "$server_ns" "${on_server[@]}" "$BIN/churnlab-target" \
    --listen="$target:9000" --threads=1 --address-file="$work/$ns.addr" >/dev/null 2>&1 &
  wait_file "$work/$ns.addr"
  timeout 300 ip netns exec "$ns" "${on_client[@]}" "$BIN/churnlab-churn" \
    --target="$target:9000" --allow-targets="$target/32" --source-ips="$client" --bind="$1" \
    --rate="$rate" --max-connections="$connections" --max-in-flight=1000 \
    --duration=$((connections / rate + 30))s --progress=false --json >"$out"
  python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["latency"]["connect_call"]
t = r["totals"]
print("%.3f %.3f %.3f %.1f %d" % (c.get("p50_ms", 0), c.get("p99_ms", 0), c.get("max_ms", 0),
                                   r.get("duration_s", 0), t.get("attempted", 0) - t.get("succeeded", 0)))
PY
  drop_namespace "$ns"
  [[ $server_ns == "$ns" ]] || drop_namespace "$server_ns"
}

echo "machine: $(nproc) cores, kernel $(uname -r); $connections connections ($fill% of 10,000 ports) at $rate/s over $path"
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
