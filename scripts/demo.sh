#!/usr/bin/env bash
# The demo: installs what is missing, builds, then starts a coordinator, a target and four agents
# (source IPs 127.0.0.2-5) and runs the TIME_WAIT scenario as a `churnlab compare`: one source IP
# first, then the same load spread over the others, side by side with the tuple budget.
# As root it all runs inside a network namespace of its own with a 1,000-port range and
# tcp_tw_reuse=0, so the port limit shows in seconds; otherwise on this host's loopback, where
# the default range makes the limit take minutes (the budget table still shows it).
# Traffic stays on loopback. Everything it starts is stopped, and the namespace deleted, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
BIN=$PWD/build/bin
source scripts/lib.sh

inside=()
if [[ $(id -u) -eq 0 ]] && command -v ip >/dev/null; then
  ns="churnlab-demo-$$"
  ip netns add "$ns"
  trap 'cleanup; ip netns del "$ns" 2>/dev/null || true' EXIT
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -q -w net.ipv4.ip_local_port_range="40000 40999" net.ipv4.tcp_tw_reuse=0
  inside=(ip netns exec "$ns")
  echo "== network namespace $ns: ip_local_port_range 40000-40999 (1,000 ports), tcp_tw_reuse=0"
else
  echo "== not root: running on this host's loopback aliases 127.0.0.2-5 with its own port range"
  echo "   ($(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range)); the single source will not run out within the run."
fi
run_in() { "${inside[@]}" "$@"; }

bg "${inside[@]}" $BIN/churnlab-coordinator --grpc-listen=127.0.0.1:0 --address-file="$work/coordinator" \
  --http-listen=127.0.0.1:0 --db="$work/runs.db" >"$work/coordinator.log" 2>&1
wait_file "$work/coordinator"
coordinator=$(cat "$work/coordinator")
# The target attaches as an observer, so the report shows the server side too.
bg "${inside[@]}" $BIN/churnlab-target --listen=127.0.0.1:0 --address-file="$work/target" \
  --close=client --coordinator="$coordinator" --name=target >"$work/target.log" 2>&1
wait_file "$work/target"
target=$(cat "$work/target")
for i in 1 2 3 4; do
  bg "${inside[@]}" $BIN/churnlab-agent --coordinator="$coordinator" --name="a$i" \
    --source-ips="127.0.0.$((i + 1))" >"$work/agent$i.log" 2>&1
done
for _ in $(seq 100); do
  [[ $(run_in $BIN/churnlab agents --coordinator="$coordinator" | grep -c '^\(a[1-4]\|target\) ') -eq 5 ]] && break
  sleep 0.1
done
echo "== coordinator $coordinator, target $target, agents:"
run_in $BIN/churnlab agents --coordinator="$coordinator"
echo
run_in $BIN/churnlab compare --coordinator="$coordinator" --spec=scenarios/time-wait.json \
  --target="$target" --report="$work/compare.json" || true
echo
echo "== runs kept in the coordinator's SQLite store"
run_in $BIN/churnlab runs --coordinator="$coordinator"
