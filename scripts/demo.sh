#!/usr/bin/env bash
# The demo, the README's first command: installs what is missing, builds, then starts a
# coordinator, a target and four agents and runs the TIME_WAIT scenario as a `churnlab compare`:
# one source IP first, then the same load spread over the four agents, side by side with the
# tuple budget. Then it keeps the dashboard up until Ctrl-C.
#
# As root it runs on the network-namespace lab (deploy/netns/lab.sh): every process on a host
# of its own, agents with five addresses each, a 1,000-port range and tcp_tw_reuse=0, so the
# port limit shows in seconds; the dashboard is forwarded to this machine's 127.0.0.1. Otherwise
# it runs on this host's loopback aliases 127.0.0.2-5 with the host's own port range, and says so.
# Traffic stays inside the lab or on loopback. Everything it starts is stopped, and its lab
# removed, on exit; the lab's prefix is its own (demoPID), so demos can run side by side.
#
# Usage: scripts/demo.sh [--exit] [--dashboard-port=N] [--prefix=P] [--no-build]
#   --exit              stop after the compare instead of keeping the dashboard up
#   --dashboard-port=N  the dashboard on 127.0.0.1:N (default: the first free port from 7401)
#   --prefix=P          the lab's prefix (default demoPID); a lab.sh lab of that prefix is
#                       replaced, and removed on exit
#   --no-build          use the binaries already in build/bin: install and build nothing
set -euo pipefail
cd "$(dirname "$0")/.."
keep_up=1
dashboard_port=""
prefix=demo$$
build=1
for arg in "$@"; do
  case "$arg" in
    --exit) keep_up=0 ;;
    --dashboard-port=*) dashboard_port=${arg#*=} ;;
    --prefix=*) prefix=${arg#*=} ;;
    --no-build) build=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *)
      echo "demo.sh: unknown option '$arg' (--exit, --dashboard-port=N, --prefix=P, --no-build)" >&2
      exit 2
      ;;
  esac
done
[[ -z "$dashboard_port" ||
   ("$dashboard_port" =~ ^[0-9]+$ && "$dashboard_port" -ge 1 && "$dashboard_port" -le 65535) ]] || {
  echo "demo.sh: --dashboard-port=$dashboard_port: want 1..65535" >&2
  exit 2
}
lab=deploy/netns/lab.sh
# lab.sh judges the prefix (exit 2, naming it) before anything is installed or built.
bash $lab hosts --prefix="$prefix" >/dev/null
if [[ $build -eq 1 ]]; then
  bash scripts/install-deps.sh
  bash scripts/build.sh churnlab churnlab-agent churnlab-coordinator churnlab-target churnlab-churn
fi
# Unless told, the first free port from 7401, so a second demo does not fail on the first's.
if [[ -z "$dashboard_port" ]]; then
  dashboard_port=7401
  while [[ -n "$(ss -Hltn "sport = :$dashboard_port")" && $dashboard_port -lt 7500 ]]; do
    dashboard_port=$((dashboard_port + 1))
  done
fi
# An installed churnlab (churnlab demo) names its own binaries' directory.
BIN=${CHURNLAB_BIN:-$PWD/build/bin}
source scripts/lib.sh
trap 'exit 130' INT TERM  # so that the EXIT trap cleans up

if [[ $(id -u) -eq 0 ]]; then
  mode=lab
  trap 'cleanup; bash $lab down --prefix="$prefix"' EXIT
  # The run is scenarios/time-wait.json: 200 new connections/s for 8 s toward one ip:port, each
  # four-tuple then 60 s in TIME_WAIT. One source IP toward that ip:port sustains
  # 1,000 ports / 60 s = 16.7/s, so the single-source run runs out of ports after
  # 1,000 / 200 = 5 s (EADDRNOTAVAIL). The spread run must sustain 200/s, not merely end before
  # it would fail: that takes 200 / 16.7 = 12 (source IP, ip:port) pairs or more, and since the
  # coordinator splits the rate evenly over agents (50/s each, whatever their addresses), each
  # agent needs 50 / 16.7 = 3 pairs or more with room to spare. 5 addresses per agent: agent1
  # keeps 4 once the single run's (its ports still in TIME_WAIT) is left out, 4 x 16.7 = 67/s
  # for its 50/s, the others 83/s; 19 pairs, 317/s in all. Each source's 12.5/s or less keeps
  # at most 750 of its 1,000 ports busy. (With 4 addresses agent1 had exactly 50/s: it ran out
  # after about a minute.)
  bash $lab up --prefix="$prefix" --agents=4 --extra-ips=4 --port-range="40000 40999" --tw-reuse=0
  on() { local host=$1; shift; bash $lab exec --prefix="$prefix" "$host" "$@"; }
  coordinator=10.77.0.1:7400
  http=10.77.0.1:7401
  target=10.77.0.2:9000
  agent_ips() { echo "10.77.1.$1,10.77.2.$1,10.77.3.$1,10.77.4.$1,10.77.5.$1"; }
  allow=10.77.0.0/16
  echo "== network-namespace lab '$prefix': coordinator, target and 4 agents on hosts of their own;"
  echo "   agents have 5 addresses each, a 1,000-port range and tcp_tw_reuse=0"
else
  mode=loopback
  on() { shift; "$@"; }
  coordinator=127.0.0.1:0
  http=127.0.0.1:$dashboard_port
  target=127.0.0.1:0
  agent_ips() { echo "127.0.0.$(($1 + 1))"; }
  allow=127.0.0.0/8
  echo "== not root, so no network-namespace lab: running on this host's loopback aliases"
  echo "   127.0.0.2-5 with its own port range ($(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range));"
  echo "   the single source will not run out within the run (the budget table shows when it would)."
fi

# Everyone proves itself with a token of the demo's own (the lab's addresses are not loopback,
# and the coordinator will not serve them without one). The dashboard only reaches this
# machine's loopback, so its reads are left open (--public-read): the page shows the runs at
# once, and starting or cancelling one asks for the token.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
auth=--token-file="$work/token"
bg on coordinator $BIN/churnlab-coordinator --grpc-listen=$coordinator --http-listen=$http "$auth" \
  --public-read \
  --address-file="$work/coordinator" --db="$work/runs.db" >"$work/coordinator.log" 2>&1
wait_file "$work/coordinator" || { cat "$work/coordinator.log"; exit 1; }
coordinator=$(cat "$work/coordinator")
# The target attaches as an observer, so the report shows the server side too.
bg on target $BIN/churnlab-target --listen=$target --address-file="$work/target" \
  --close=client --coordinator="$coordinator" "$auth" --name=target >"$work/target.log" 2>&1
wait_file "$work/target" || { cat "$work/target.log"; exit 1; }
target=$(cat "$work/target")
for i in 1 2 3 4; do
  bg on "agent$i" $BIN/churnlab-agent --coordinator="$coordinator" "$auth" --name="agent$i" \
    --source-ips="$(agent_ips $i)" --allow-targets=$allow >"$work/agent$i.log" 2>&1
done
for _ in $(seq 100); do
  [[ $(on coordinator $BIN/churnlab agents --coordinator="$coordinator" "$auth" |
       grep -c '^\(agent[1-4]\|target\) ') -eq 5 ]] && break
  sleep 0.1
done

# The dashboard, on this machine's loopback: in the lab, forwarded into the coordinator's host.
if [[ $mode == lab ]]; then
  bg socat "TCP-LISTEN:$dashboard_port,bind=127.0.0.1,reuseaddr,fork" \
    "EXEC:bash $lab exec --prefix=$prefix coordinator socat STDIO TCP\:${http/:/\\:}"
  sleep 0.3
  kill -0 "${pids[-1]}" 2>/dev/null || {
    echo "demo.sh: cannot forward the dashboard to 127.0.0.1:$dashboard_port (port taken?);" \
      "try --dashboard-port=N" >&2
    exit 1
  }
fi
dashboard="http://127.0.0.1:$dashboard_port/"
echo "== coordinator $coordinator, target $target, dashboard $dashboard"
on coordinator $BIN/churnlab agents --coordinator="$coordinator" "$auth"
echo
on coordinator $BIN/churnlab compare --coordinator="$coordinator" "$auth" --spec=scenarios/time-wait.json \
  --target="$target" --report="$work/compare.json" || true
echo
echo "== runs kept in the coordinator's SQLite store"
on coordinator $BIN/churnlab runs --coordinator="$coordinator" "$auth"
if [[ $keep_up -eq 1 ]]; then
  echo
  echo "== the dashboard is up at $dashboard (open the runs there, tick both to see them side"
  echo "   by side; to start or cancel a run, paste the token $(cat "$work/token") into the page)."
  echo "   Ctrl-C stops everything and removes the lab."
  trap 'exit 0' INT TERM
  while true; do sleep 1; done
fi
