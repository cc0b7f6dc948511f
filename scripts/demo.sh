#!/usr/bin/env bash
# The demo: installs what is missing, builds, starts churnlab-target on loopback, runs one churn
# run against it (5 s at 2,000 new connections/s, client closes first) and prints the outcome,
# the target's own counts and the TIME_WAIT sockets the run left behind on this host.
# Traffic goes to 127.0.0.1 only. Everything it starts is stopped before it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh

workdir=$(mktemp -d)
target_pid=""
cleanup() {
  if [[ -n "$target_pid" ]] && kill -0 "$target_pid" 2>/dev/null; then kill "$target_pid"; fi
  rm -rf "$workdir"
}
trap cleanup EXIT

./build/bin/churnlab-target --listen=127.0.0.1:0 --address-file="$workdir/address" \
  --protocol=counter --close=client >"$workdir/target.log" 2>&1 &
target_pid=$!
for _ in $(seq 100); do [[ -s "$workdir/address" ]] && break; sleep 0.05; done
target=$(cat "$workdir/address")
echo "== churnlab-target listening on $target"
echo "== churnlab-churn: 2000 conn/s for 5 s, counter protocol, client closes first"
./build/bin/churnlab-churn --target="$target" --rate=2000 --duration=5s --close=client-fin

kill -TERM "$target_pid"
wait "$target_pid" || true
target_pid=""
echo
echo "== the target's view"
tail -n 1 "$workdir/target.log"
port=${target##*:}
tw=$(ss -Htan state time-wait "( dport = :$port )" | wc -l)
echo
echo "== $tw sockets toward port $port now sit in TIME_WAIT on the client side: the client closed"
echo "   first, so it keeps each four-tuple for 60 s. One source IP toward one ip:port has"
read -r low high < /proc/sys/net/ipv4/ip_local_port_range
echo "   $((high - low + 1)) ports (ip_local_port_range $low-$high): about $(((high - low + 1) / 60)) new connections/s"
echo "   can be sustained without TIME_WAIT reuse (tcp_tw_reuse=$(cat /proc/sys/net/ipv4/tcp_tw_reuse))."
