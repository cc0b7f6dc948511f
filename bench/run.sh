#!/usr/bin/env bash
# The engine benchmark, in one invocation on loopback (traffic to 127.0.0.1 only):
#  (a) churnlab's engine vs (c) a bare reference loop, same churnlab-target, same concurrency,
#      over 4 destination ports and over 1 (one destination shows the kernel's free-port search);
#  (b) wrk -t1 -c64 -H 'Connection: close' vs the engine against the same one-worker nginx;
#  (d) user-space memory per in-flight connection with 20,000 in flight.
# Prints connections per second, ratios and bytes per connection. Every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --bench
bash scripts/build.sh >/dev/null
ulimit -n "$(ulimit -Hn)"
# In-flight connections for (d): 20,000, or fewer when the fd limit (per process) is lower.
HELD=$(( $(ulimit -n) - 1000 < 20000 ? $(ulimit -n) - 1000 : 20000 ))
BIN=build/bin
SECS=${BENCH_SECONDS:-5}
CONC=64
source scripts/lib.sh
source bench/nginx_conf.sh

start_target() {  # start_target NAME FLAGS... ; sets $addr to the bound addresses
  local name=$1
  shift
  bg $BIN/churnlab-target --address-file="$work/$name.addr" "$@" >"$work/$name.log" 2>&1
  wait_file "$work/$name.addr"
  addr=$(cat "$work/$name.addr")
}
engine() {  # engine FLAGS... -> achieved conn/s
  $BIN/churnlab-churn --progress=false --threads=1 --duration=${SECS}s "$@" | awk '/achieved/ {print $2}'
}
reference() {  # reference TARGETS -> conn/s
  $BIN/churnlab-reference-loop "$1" $CONC "$SECS" | awk '{print $2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
echo "ip_local_port_range $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range), tcp_tw_reuse=$(cat /proc/sys/net/ipv4/tcp_tw_reuse)"
echo "each figure: ${SECS}s, concurrency $CONC, one client thread, client closes first unless noted"
echo

echo "(a)+(c) churnlab-target, counter protocol, 1 server thread"
# Every measurement gets a target on fresh ports: the TIME_WAIT left by one run would otherwise
# slow the next one's free-port search toward the same destination.
fresh() {  # fresh N: sets $addr to N fresh listening addresses of a new 1-thread target
  start_target "t$RANDOM" --listen="$(printf '127.0.0.1:0,%.0s' $(seq "$1") | sed 's/,$//')" --threads=1
}
# Kernel state left by earlier runs (TIME_WAIT across the whole port range) drifts, so each pair
# is measured in ABBA order and averaged: reference, engine, engine, reference.
abba() {  # abba PORTS -> sets $ref and $eng
  local r1 e1 e2 r2
  fresh "$1"; r1=$(reference "$addr")
  fresh "$1"; e1=$(engine --target="$addr" --concurrency=$CONC)
  fresh "$1"; e2=$(engine --target="$addr" --concurrency=$CONC)
  fresh "$1"; r2=$(reference "$addr")
  ref=$(( (r1 + r2) / 2 )); eng=$(( (e1 + e2) / 2 ))
  echo "  $1 destination port(s): reference $r1, $r2; engine $e1, $e2 conn/s" >&2
}
abba 4; ref4=$ref; eng4=$eng
echo "  4 destination ports: reference $ref4 conn/s, engine $eng4 conn/s, engine/reference $(ratio "$eng4" "$ref4")"
abba 1; ref1=$ref; eng1=$eng
echo "  1 destination port:  reference $ref1 conn/s, engine $eng1 conn/s, engine/reference $(ratio "$eng1" "$ref1")"
echo "  one destination vs four: reference $(ratio "$ref1" "$ref4"), engine $(ratio "$eng1" "$eng4")"
echo

echo "(b) nginx, 1 worker, HTTP with Connection: close (the server closes first)"
port=$(( 20000 + RANDOM % 10000 ))
while ss -Htln "( sport = :$port )" | grep -q .; do port=$((port + 1)); done
nginx_conf "$work" "127.0.0.1:$port"
bg nginx -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log"
for _ in $(seq 100); do ss -Htln "( sport = :$port )" | grep -q . && break; sleep 0.05; done
wrk_rate=$(wrk -t1 -c$CONC -d${SECS}s -H 'Connection: close' "http://127.0.0.1:$port/" |
  awk '/Requests\/sec/ {printf "%.0f", $2}')
eng_nginx=$(engine --target=127.0.0.1:$port --concurrency=$CONC --protocol=http --close=server-fin)
echo "  wrk $wrk_rate req/s (= conn/s), engine $eng_nginx conn/s, engine/wrk $(ratio "$eng_nginx" "$wrk_rate")"
echo

echo "(d) memory: $HELD connections held open by a target that answers after 6 s (fd limit $(ulimit -n))"
start_target slow --listen=127.0.0.1:0,127.0.0.1:0 --threads=1 --delay=6s
slow=$addr
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# Baseline: the engine with one connection slot; the measured run preallocates $HELD slots, so
# the difference is everything the engine spends on them.
$BIN/churnlab-churn --progress=false --target="$slow" --rate=10 --duration=3s --max-in-flight=1 \
  --io-timeout=10s >/dev/null &
bp=$!
sleep 2
base=$(rss_kib $bp)
wait $bp
$BIN/churnlab-churn --progress=false --target="$slow" --rate=10000 --max-connections=$HELD --duration=2s --max-in-flight=$HELD \
  --io-timeout=10s >"$work/mem.log" &
mp=$!
sleep 3.5
peak=$(rss_kib $mp)
inflight=$(ss -Htan state established | awk -v a="${slow%%,*}" -v b="${slow##*,}" '$4 == a || $4 == b' | wc -l)
kill -INT $mp
wait $mp || true
echo "  RSS with ~0 in flight: ${base} KiB; with $HELD in flight: ${peak} KiB (client sockets ESTABLISHED to the target: $inflight)"
echo "  user-space bytes per in-flight connection: $(awk -v p="$peak" -v b="$base" -v n="$HELD" 'BEGIN { printf "%.0f", (p - b) * 1024 / n }')"
echo

echo "(e) telemetry cost: a sock_diag census with ~30,000 sockets on the host, and the engine's rate"
echo "    with and without a telemetry sample every second"
$BIN/churnlab-telemetry-bench | sed 's/^/  /'
