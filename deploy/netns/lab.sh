#!/usr/bin/env bash
# The network-namespace lab: several hosts on one machine, for tests and demos.
#
# A coordinator host, a target host and N agent hosts, each in a network namespace of its own,
# joined by a bridge that lives in a namespace too (PREFIX-sw). Addresses come from 10.77.0.0/16,
# which exists only inside these namespaces; nothing is added to the machine's own network:
#   coordinator 10.77.0.1   target 10.77.0.2   agentI 10.77.1.I (+ 10.77.2.I ... with --extra-ips)
# Agent hosts get their own sysctls (port range, tcp_tw_reuse), so limits show in seconds.
# Labs with different prefixes are separate networks and can run at the same time.
#
# Usage (as root; options go before or after the command, but before HOST):
#   lab.sh up [--agents=N] [--extra-ips=K] [--port-range="LOW HIGH"] [--tw-reuse=0|1|2] [--prefix=P]
#   lab.sh down [--prefix=P]            stops what runs in the lab and removes its namespaces
#                                       (safe to repeat)
#   lab.sh exec [--prefix=P] HOST CMD...  runs CMD on HOST: coordinator, target or agentI
#   lab.sh addr [--prefix=P] HOST       HOST's addresses, one per line
#   lab.sh hosts [--prefix=P]           the lab's hosts
# Defaults: --agents=4 --extra-ips=0 --port-range="40000 40999" --tw-reuse=0 --prefix=cl.
# A lab's namespaces are P-sw, P-coordinator, P-target and P-agentI (P: 1-12 lowercase letters or
# digits). `up` records each namespace it makes, with its kernel id, in /run/churnlab-lab/P;
# `down`, `exec`, `addr` and `hosts` act only on the namespaces in that record, so a namespace
# someone else made is never entered, stopped or removed. `up` replaces the lab of the same
# prefix, refuses (naming them, changing nothing) when other namespaces named P-* exist, and
# removes what it made if it fails half-way.
# Exit codes: 0 done, 1 refused or failed, 2 bad usage (the message names the bad value).
set -euo pipefail

prefix=cl
agents=4
extra_ips=0
port_range="40000 40999"
tw_reuse=0
state_dir=/run/churnlab-lab
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }
die() { echo "lab.sh: $*" >&2; exit 2; }
refuse() { echo "lab.sh: $*" >&2; exit 1; }

# Options anywhere up to the command's first argument (HOST); what follows HOST is CMD, untouched.
command=""
args=()
[[ $# -gt 0 ]] || usage
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage 0 ;;
    --agents=*) agents=${1#*=} ;;
    --extra-ips=*) extra_ips=${1#*=} ;;
    --port-range=*) port_range=${1#*=} ;;
    --tw-reuse=*) tw_reuse=${1#*=} ;;
    --prefix=*) prefix=${1#*=} ;;
    -*) die "unknown option '$1' (--agents=N, --extra-ips=K, --port-range=\"LOW HIGH\"," \
          "--tw-reuse=0|1|2, --prefix=P)" ;;
    *)
      if [[ -z "$command" ]]; then
        command=$1
      else
        args=("$@")
        break
      fi
      ;;
  esac
  shift
done
[[ -n "$command" ]] || die "no command (up, down, exec, addr, hosts)"
[[ "$agents" =~ ^[0-9]+$ && "$agents" -ge 1 && "$agents" -le 200 ]] ||
  die "--agents=$agents: want 1..200"
[[ "$extra_ips" =~ ^[0-9]+$ && "$extra_ips" -le 50 ]] || die "--extra-ips=$extra_ips: want 0..50"
read -r low high extra <<<"$port_range" || true
[[ "$low" =~ ^[0-9]+$ && "$high" =~ ^[0-9]+$ && -z "$extra" && "$low" -ge 1 && "$low" -le "$high" &&
   "$high" -le 65535 ]] ||
  die "--port-range='$port_range': want \"LOW HIGH\", 1 <= LOW <= HIGH <= 65535"
[[ "$tw_reuse" =~ ^[012]$ ]] || die "--tw-reuse=$tw_reuse: want 0, 1 or 2"
[[ "$prefix" =~ ^[a-z][a-z0-9]{0,11}$ ]] ||
  die "--prefix=$prefix: want 1-12 lowercase letters/digits, the first a letter"
record=$state_dir/$prefix

# A namespace's kernel id (the inode of its nsfs file): a name alone could have been reused.
ns_id() { stat -L -c %i "/var/run/netns/$1" 2>/dev/null || true; }

# The recorded namespaces that still exist as the ones `up` made, in the order it made them.
owned() {
  local name id
  [[ -f "$record" ]] || return 0
  while read -r name id; do
    [[ -n "$id" && "$(ns_id "$name")" == "$id" ]] && echo "$name"
  done <"$record"
  return 0
}

# Namespaces named PREFIX-* that this lab did not make.
foreign() {
  local mine
  mine=$(owned)
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}-" |
    grep -vxF -e "${mine:-/}" || true
}

# One `up` or `down` at a time on this machine, so a record always matches its namespaces.
lock() {
  exec 9<"${BASH_SOURCE[0]}"
  flock -w 60 9 || refuse "another lab.sh up/down has held the lock for 60 s"
}

# Stops whatever still runs in the recorded namespaces, then removes them and the record.
down() {
  local ns pids mine
  [[ -f "$record" ]] || return 0
  [[ $(id -u) -eq 0 ]] || die "down needs root (it removes network namespaces)"
  mine=$(owned)
  local replaced
  replaced=$(awk '{print $1}' "$record" | grep -vxF -e "${mine:-/}" |
    while read -r ns; do [[ -z "$(ns_id "$ns")" ]] || echo "$ns"; done || true)
  [[ -z "$replaced" ]] || echo "lab.sh: down: left alone:" $replaced "(made by someone else" \
    "since this lab's was removed)" >&2
  for ns in $mine; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -z "$pids" ]] || kill $pids 2>/dev/null || true
  done
  for _ in $(seq 20); do
    pids=$(for ns in $mine; do ip netns pids "$ns" 2>/dev/null; done)
    [[ -z "$pids" ]] && break
    sleep 0.1
  done
  [[ -z "$pids" ]] || kill -9 $pids 2>/dev/null || true
  for ns in $mine; do ip netns del "$ns" 2>/dev/null || true; done
  rm -f "$record"
  rmdir "$state_dir" 2>/dev/null || true
}

# make_ns NAME: a new namespace, recorded before anything else can fail.
make_ns() {
  ip netns add "$1"
  echo "$1 $(ns_id "$1")" >>"$record"
}

# add_host NAME ADDRESS...: a namespace with eth0 on the bridge, the addresses on it.
add_host() {
  local name=$1 ns="$prefix-$1"
  shift
  make_ns "$ns"
  ip -n "$ns" link set lo up
  ip -n "$prefix-sw" link add "v-$name" type veth peer name eth0 netns "$ns"
  ip -n "$prefix-sw" link set "v-$name" master br0 up
  for address in "$@"; do ip -n "$ns" addr add "$address/16" dev eth0; done
  ip -n "$ns" link set eth0 up
}

up() {
  [[ $(id -u) -eq 0 ]] || die "up needs root (it creates network namespaces)"
  local others
  others=$(foreign)
  if [[ -n "$others" ]]; then
    local what="namespace $others exists"
    [[ $(wc -w <<<"$others") -eq 1 ]] || what="namespaces $(echo $others | sed 's/ /, /g') exist"
    refuse "up --prefix=$prefix: refused: $what, not made by this lab (left alone)." \
      "Choose another --prefix."
  fi
  down
  mkdir -p "$state_dir"
  : >"$record"
  trap '[[ $? -eq 0 ]] || { echo "lab.sh: setting up failed; removing the lab" >&2; down; }' EXIT
  trap 'exit 130' INT TERM
  make_ns "$prefix-sw"
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
  echo "lab.sh: up ($prefix): coordinator 10.77.0.1, target 10.77.0.2, $agents agents" \
    "(10.77.1.1-$agents, $extra_ips extra addresses each), agents' port range $port_range," \
    "tcp_tw_reuse=$tw_reuse"
}

# lab_host HOST: HOST's namespace, when it is one this lab made.
lab_host() {
  local mine
  mine=$(owned)
  grep -qxF "$prefix-$1" <<<"$mine" && return 0
  [[ -f "$record" ]] || refuse "no lab with prefix '$prefix' is up (lab.sh up --prefix=$prefix)"
  die "no host '$1' in lab '$prefix' (hosts:" \
    "$(echo "$mine" | sed "s/^$prefix-//" | grep -vx sw | xargs))"
}

no_args() { [[ ${#args[@]} -eq 0 ]] || die "$command takes no arguments, not '${args[0]}'"; }

case "$command" in
  up) no_args; lock; up ;;
  down) no_args; lock; down ;;
  exec)
    [[ ${#args[@]} -ge 2 ]] || die "exec HOST CMD..."
    lab_host "${args[0]}"
    exec ip netns exec "$prefix-${args[0]}" "${args[@]:1}"
    ;;
  addr)
    [[ ${#args[@]} -eq 1 ]] || die "addr HOST"
    lab_host "${args[0]}"
    ip -n "$prefix-${args[0]}" -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]}'
    ;;
  hosts) no_args; owned | sed "s/^$prefix-//" | grep -vx sw || true ;;
  *) die "unknown command '$command' (up, down, exec, addr, hosts)" ;;
esac
