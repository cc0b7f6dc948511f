#!/usr/bin/env bash
# How many new connections/s one source IP sustains toward one ip:port through a 1,000-port
# range with tcp_tw_reuse off (TIME_WAIT leaves bind mode no-port 1,000 / 60 = 16.7/s), client
# closing first: churnlab-churn in bind modes no-port and engine, the engine with tcp_timestamps
# on (it takes its own TIME_WAITs over: a connect() from a port its caller bound may, whatever
# tcp_tw_reuse says) and off (it waits them out). Each run is in a fresh network namespace of its
# own with churnlab-target; the kernel is the witness: its TcpActiveOpens and TcpExtTWRecycled
# over the run (nstat), and the TIME_WAITs left (ss). Removes the namespaces at the end.
# Usage: sudo bench/time_wait_takeover.sh [SECONDS=5] [RATES="1000 2500 4000"]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
RATES=${2:-"1000 2500 4000"}
BIN=$PWD/build/bin
[[ $(id -u) == 0 ]] || { echo "time_wait_takeover: needs root (network namespaces)" >&2; exit 2; }
[[ $SECS =~ ^[0-9]+$ ]] && ((SECS >= 1 && SECS <= 120)) ||
  { echo "time_wait_takeover: SECONDS 1..120" >&2; exit 2; }
for r in $RATES; do
  [[ $r =~ ^[0-9]+$ ]] && ((r >= 1 && r <= 50000)) ||
    { echo "time_wait_takeover: RATE '$r': 1..50000" >&2; exit 2; }
done
source scripts/lib.sh
trap 'exit 1' INT TERM  # the EXIT trap then removes the namespaces (make_namespace)

# run MODE TIMESTAMPS RATE: one run in a fresh namespace; prints its row.
run() {
  local ns="cl-takeover-$$-$RANDOM" out
  out="$work/$ns.json"
  make_namespace "$ns"
  in_ns sysctl -q -w net.ipv4.ip_local_port_range="40000 40999" net.ipv4.tcp_tw_reuse=0 \
    net.ipv4.tcp_timestamps="$2" >/dev/null
  bg in_ns "$BIN/churnlab-target" --listen=127.0.0.1:9000 --threads=1 \
    --address-file="$work/$ns.addr" >/dev/null 2>&1
  wait_file "$work/$ns.addr"
  in_ns nstat -n
  timeout $((SECS + 60)) ip netns exec "$ns" "$BIN/churnlab-churn" --target=127.0.0.1:9000 \
    --source-ips=127.0.0.1 --bind="$1" --rate="$3" --duration="${SECS}s" --close=client-fin \
    --progress=false --json >"$out" || true
  local opens recycled tw
  opens=$(in_ns nstat -a | awk '$1 == "TcpActiveOpens" { print $2 }')
  recycled=$(in_ns nstat -a | awk '$1 == "TcpExtTWRecycled" { print $2 }')
  tw=$(in_ns ss -Htan state time-wait | wc -l)
  python3 - "$out" "$1" "$2" "$3" "${opens:-0}" "${recycled:-0}" "$tw" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["totals"]
c = r["latency"]["connect_call"]
secs = r.get("duration_s", 0) or 1
print("%-8s %4s %8s %10d %9d %10.0f %8d %10s %10s %6s" % (
    sys.argv[2], sys.argv[3], sys.argv[4], t.get("succeeded", 0),
    t.get("attempted", 0) - t.get("succeeded", 0), t.get("succeeded", 0) / secs,
    int(sys.argv[5]), sys.argv[6], "%.3f" % c.get("p99_ms", 0), sys.argv[7]))
PY
  drop_namespace "$ns"
}

echo "machine: $(nproc) cores, kernel $(uname -r); one source toward one ip:port, 1,000 ports," \
  "tcp_tw_reuse=0, client-first close, $SECS s a run"
printf '%-8s %4s %8s %10s %9s %10s %8s %10s %10s %6s\n' mode ts "asked/s" succeeded failed \
  "made/s" opens TWRecycled "p99 ms" TW
for rate in $RATES; do
  run no-port 1 "$rate"
  run engine 1 "$rate"
  run engine 0 "$rate"
done
