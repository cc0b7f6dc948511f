#!/usr/bin/env bash
# Churn held at 90% of the tuple budget for longer than a TIME_WAIT, through the real control
# plane (a coordinator, an agent, churnlab-target, `churnlab run`) in a network namespace of its
# own with a 1,000-port range and tcp_tw_reuse off: one source toward one ip:port sustains
# 1,000 / 60 = 16.7 new connections/s, and the run asks 15/s for 90 s, so the range sits at 90%
# full from the 60th second on. Bind mode no-port (source 127.0.0.2) and then engine (127.0.0.3):
# for each, the rate it kept, its failures, the time inside socket()..connect() at p99 while the
# range was under 20% full against while it was 80% full or more (the report's series), and the
# report's own sentences on connect(). Removes the namespace at the end.
# Usage: sudo bench/sustained_fill.sh [SECONDS=90] [RATE=15]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-90}
RATE=${2:-15}
BIN=$PWD/build/bin
[[ $(id -u) == 0 ]] || { echo "sustained_fill: needs root (a network namespace)" >&2; exit 2; }
[[ $SECS =~ ^[0-9]+$ ]] && ((SECS >= 10 && SECS <= 600)) || { echo "sustained_fill: SECONDS 10..600" >&2; exit 2; }
source scripts/lib.sh
ns="cl-sustain-$$"
trap 'exit 1' INT TERM  # the EXIT trap then removes the namespace
make_namespace "$ns"
in_ns sysctl -q -w net.ipv4.ip_local_port_range="40000 40999" net.ipv4.tcp_tw_reuse=0 >/dev/null
bg in_ns "$BIN/churnlab-target" --listen=127.0.0.1:9000 --threads=1 --address-file="$work/t" \
  >"$work/target.log" 2>&1
wait_file "$work/t"
bg in_ns "$BIN/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --http-listen= \
  --db="$work/runs.db" --address-file="$work/c" >"$work/coordinator.log" 2>&1
wait_file "$work/c"
c=$(cat "$work/c")
bg in_ns "$BIN/churnlab-agent" --coordinator="$c" --name=a1 --source-ips=127.0.0.2,127.0.0.3 \
  >"$work/agent.log" 2>&1
echo "machine: $(nproc) cores, kernel $(uname -r); $RATE/s for $SECS s from one source to one ip:port, 1,000 ports, TIME_WAIT 60 s"
for pair in no-port:127.0.0.2 engine:127.0.0.3; do
  mode=${pair%%:*} source=${pair#*:}
  in_ns "$BIN/churnlab" run --coordinator="$c" --expect-agents=1 --target=127.0.0.1:9000 \
    --rate="$RATE" --duration="${SECS}s" --bind="$mode" --source-ips="$source" \
    --close=client-fin --report="$work/$mode.json" >"$work/$mode.out" 2>&1 || true
  python3 - "$work/$mode.json" "$mode" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
series = r.get("series", [])
def p99s(keep):
    xs = [p["connect_call_p99_ms"] for p in series if keep(p.get("max_port_fill", 0)) and p.get("connect_call_p99_ms")]
    return "%.3f ms (median of %d seconds)" % (statistics.median(xs), len(xs)) if xs else "-"
t = r["totals"]
print("%s: achieved %.1f/s, %d failed of %d; connect() p99 under 20%% full %s, at 80%%+ full %s; fullest %.0f%%"
      % (sys.argv[2], r.get("achieved_rate", 0), t.get("failed", 0), t.get("attempted", 0),
         p99s(lambda f: f < 0.2), p99s(lambda f: f >= 0.8),
         100 * max([p.get("max_port_fill", 0) for p in series] or [0])))
for o in r.get("observations", []):
    if "connect()" in o:
        print("  report:", o)
PY
done
