#!/usr/bin/env bash
# The network-namespace lab: several hosts on one machine, for tests and demos.
#
# A coordinator host, a target host and N agent hosts, each in a network namespace of its own,
# joined by a bridge that lives in a namespace too (PREFIX-sw). Addresses come from 10.77.0.0/16,
# which exists only inside these namespaces; nothing is added to the machine's own network:
#   coordinator 10.77.0.1   target 10.77.0.2   agentI 10.77.1.I (+ 10.77.2.I ... with --extra-ips)
# Agent hosts get their own sysctls (port range, tcp_tw_reuse), so limits show in seconds.
#
# Usage (as root):
#   lab.sh up [--agents=N] [--extra-ips=K] [--port-range="LOW HIGH"] [--tw-reuse=0|1|2] [--prefix=P]
#   lab.sh down [--prefix=P]            stops what runs in the lab and removes its namespaces
#                                       (safe to repeat)
#   lab.sh exec HOST CMD...             runs CMD on HOST: coordinator, target or agentI
#   lab.sh addr HOST                    HOST's addresses, one per line
#   lab.sh hosts                        the lab's hosts
# `up` replaces a lab of the same prefix, and removes what it made if it fails half-way.
set -euo pipefail

prefix=cl
agents=4
extra_ips=0
port_range="40000 40999"
tw_reuse=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }
die() { echo "lab.sh: $*" >&2; exit 2; }

command=${1:-}
[[ -n "$command" ]] || usage
shift
if [[ "$command" == "-h" || "$command" == "--help" ]]; then usage 0; fi
while [[ $# -gt 0 && "$1" == --* ]]; do
  case "$1" in
    --agents=*) agents=${1#*=} ;;
    --extra-ips=*) extra_ips=${1#*=} ;;
    --port-range=*) port_range=${1#*=} ;;
    --tw-reuse=*) tw_reuse=${1#*=} ;;
    --prefix=*) prefix=${1#*=} ;;
    --help) usage 0 ;;
    *) die "unknown option '$1'" ;;
  esac
  shift
done
[[ "$agents" =~ ^[0-9]+$ && "$agents" -ge 1 && "$agents" -le 200 ]] ||
  die "--agents=$agents: want 1..200"
[[ "$extra_ips" =~ ^[0-9]+$ && "$extra_ips" -le 50 ]] || die "--extra-ips=$extra_ips: want 0..50"
[[ "$port_range" =~ ^[0-9]+\ [0-9]+$ ]] || die "--port-range='$port_range': want \"LOW HIGH\""
[[ "$tw_reuse" =~ ^[012]$ ]] || die "--tw-reuse=$tw_reuse: want 0, 1 or 2"
[[ "$prefix" =~ ^[a-z][a-z0-9]{0,5}$ ]] || die "--prefix=$prefix: want 1-6 lowercase letters/digits"

namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}-" || true; }

# Stops whatever still runs inside the lab, then removes its namespaces.
down() {
  local ns pids
  for ns in $(namespaces); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -z "$pids" ]] || kill $pids 2>/dev/null || true
  done
  for _ in $(seq 20); do
    pids=$(for ns in $(namespaces); do ip netns pids "$ns" 2>/dev/null; done)
    [[ -z "$pids" ]] && break
    sleep 0.1
  done
  [[ -z "$pids" ]] || kill -9 $pids 2>/dev/null || true
  for ns in $(namespaces); do ip netns del "$ns" 2>/dev/null || true; done
}

# add_host NAME ADDRESS...: a namespace with eth0 on the bridge, the addresses on it.
add_host() {
  local name=$1 ns="$prefix-$1"
  shift
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$prefix-sw" link add "v-$name" type veth peer name eth0 netns "$ns"
  ip -n "$prefix-sw" link set "v-$name" master br0 up
  for address in "$@"; do ip -n "$ns" addr add "$address/16" dev eth0; done
  ip -n "$ns" link set eth0 up
}

up() {
  [[ $(id -u) -eq 0 ]] || die "up needs root (it creates network namespaces)"
  down
  trap 'echo "lab.sh: setting up failed; removing the lab" >&2; down' ERR
  ip netns add "$prefix-sw"
  ip -n "$prefix-sw" link add br0 type bridge
  ip -n "$prefix-sw" link set br0 up
  add_host coordinator 10.77.0.1
  add_host target 10.77.0.2
  for i in $(seq "$agents"); do
    local addresses=("10.77.1.$i")
    for k in $(seq "$extra_ips"); do addresses+=("10.77.$((k + 1)).$i"); done
    add_host "agent$i" "${addresses[@]}"
    ip netns exec "$prefix-agent$i" sysctl -q -w net.ipv4.ip_local_port_range="$port_range" \
      net.ipv4.tcp_tw_reuse="$tw_reuse"
  done
  trap - ERR
  echo "lab.sh: up: coordinator 10.77.0.1, target 10.77.0.2, $agents agents (10.77.1.1-$agents," \
    "$extra_ips extra addresses each), agents' port range $port_range, tcp_tw_reuse=$tw_reuse"
}

case "$command" in
  up) up ;;
  down) down ;;
  exec)
    [[ $# -ge 2 ]] || die "exec HOST CMD..."
    host=$1
    shift
    exec ip netns exec "$prefix-$host" "$@"
    ;;
  addr)
    [[ $# -eq 1 ]] || die "addr HOST"
    ip -n "$prefix-$1" -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]}'
    ;;
  hosts) namespaces | sed "s/^$prefix-//" | grep -v '^sw$' ;;
  *) die "unknown command '$command' (up, down, exec, addr, hosts)" ;;
esac
