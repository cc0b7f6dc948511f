#!/usr/bin/env bash
# conntrack and SNAT, with the kernel as the witness (root: network namespaces of this test's
# own, nothing added to the machine's network). Three hosts, like a Kubernetes node with a pod
# behind it:
#   pod  10.78.1.2, 10.78.1.3 --- node 10.78.1.1 | 10.78.0.1 --- target 10.78.0.2
# The node routes the pod's traffic and masquerades everything that leaves toward the target
# (nftables) to its one outside address and 20 ports, as a node's SNAT does. The coordinator
# runs on the node; agent "pod" churns from the pod's two addresses, agent "node" from the
# node's inside one (a hostNetwork agent: it reads the node's conntrack table, where the NAT's
# flows are). The target observes. A closed-model run holds 40 connections open at once through
# the NAT's 20 ports, so the NAT runs out of ports. The report must:
#  - give each agent's conntrack table (the node's max is the kernel's nf_conntrack_max),
#  - count the NAT's failed inserts as the node's kernel does (/proc/net/stat/nf_conntrack),
#  - say the target saw the connections come from 10.78.0.1, no agent's source, so the budget is
#    the NAT's, and that the failed inserts are SNAT port exhaustion.
# A full table (count at nf_conntrack_max) cannot be made here: the max is one for the whole
# kernel and read-only inside a network namespace, so shrinking it would touch every namespace
# of the machine; that sentence is held to its numbers by the analysis unit test.
# Usage: nat_test.sh BIN_DIR
source "$(dirname "$0")/../support/shell_test.sh" nat_test "$@"
if [[ $(id -u) -ne 0 ]]; then
  echo "nat_test: skipped: needs root to create network namespaces (ip netns add)"
  exit 77
fi
command -v nft >/dev/null || { echo "nat_test: skipped: no nft (apt-get install nftables)"; exit 77; }
[[ -r /proc/sys/net/netfilter/nf_conntrack_max ]] ||
  { echo "nat_test: skipped: this kernel has no conntrack"; exit 77; }

p=nat$$
namespaces=()
remove_namespaces() {
  for ns in "${namespaces[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap 'cleanup; remove_namespaces' EXIT
for host in pod node target; do
  ip netns add "$p-$host"
  namespaces+=("$p-$host")
  ip -n "$p-$host" link set lo up
done
on() { local host=$1; shift; ip netns exec "$p-$host" "$@"; }
ip link add "$p-pod0" netns "$p-pod" type veth peer name "$p-in" netns "$p-node"
ip link add "$p-tgt0" netns "$p-target" type veth peer name "$p-out" netns "$p-node"
ip -n "$p-pod" addr add 10.78.1.2/24 dev "$p-pod0"
ip -n "$p-pod" addr add 10.78.1.3/24 dev "$p-pod0"
ip -n "$p-node" addr add 10.78.1.1/24 dev "$p-in"
ip -n "$p-node" addr add 10.78.0.1/24 dev "$p-out"
ip -n "$p-target" addr add 10.78.0.2/24 dev "$p-tgt0"
for l in "pod $p-pod0" "node $p-in" "node $p-out" "target $p-tgt0"; do
  set -- $l
  ip -n "$p-$1" link set "$2" up
done
ip -n "$p-pod" route add default via 10.78.1.1
ip -n "$p-target" route add default via 10.78.0.1  # to the coordinator, on the node's inside
on node sysctl -qw net.ipv4.ip_forward=1
on node nft "add table ip $p; add chain ip $p post { type nat hook postrouting priority srcnat; };
  add rule ip $p post oifname $p-out meta l4proto tcp masquerade to :20000-20019"
for host in pod node; do on "$host" sysctl -qw net.ipv4.ip_local_port_range="40000 49999"; done

# insert_failed summed over the node's CPUs, as the kernel counts it.
insert_failed() {
  local header line col=-1 i sum=0
  {
    read -r -a header
    for i in "${!header[@]}"; do [[ ${header[$i]} == insert_failed ]] && col=$i; done
    while read -r -a line; do sum=$((sum + 16#${line[$col]})); done
  } < <(on node cat /proc/net/stat/nf_conntrack)
  [[ $col -ge 0 ]] || fail "no insert_failed column in the node's /proc/net/stat/nf_conntrack"
  echo "$sum"
}

openssl rand -hex 32 >token
bg on node "$bin/churnlab-coordinator" --grpc-listen=10.78.1.1:0 --address-file=coord \
  --http-listen=127.0.0.1:0 --token-file=token --db=runs.db >coordinator.log 2>&1
need_file coord
port=$(sed -E 's/.*:([0-9]+)$/\1/' coord)
sec=(--token-file=token)
bg on target "$bin/churnlab-target" --listen=10.78.0.2:9000 --close=client \
  --delay=300ms..400ms --coordinator="10.78.1.1:$port" --name=target "${sec[@]}" >target.log 2>&1
bg on pod "$bin/churnlab-agent" --coordinator="10.78.1.1:$port" --name=pod \
  --source-cidrs=10.78.1.0/24 --allow-targets=10.78.0.0/24 "${sec[@]}" >pod.log 2>&1
bg on node "$bin/churnlab-agent" --coordinator="10.78.1.1:$port" --name=node \
  --source-ips=10.78.1.1 --allow-targets=10.78.0.0/24 "${sec[@]}" >node.log 2>&1
cli() { on node "$bin/churnlab" "$@" --coordinator="10.78.1.1:$port" "${sec[@]}"; }
for _ in $(seq 100); do
  [[ $(cli agents 2>/dev/null | grep -cE '^(pod|node|target) ') -eq 3 ]] && break
  sleep 0.1
done
[[ $(cli agents 2>/dev/null | grep -cE '^(pod|node|target) ') -eq 3 ]] ||
  fail "the agents and the target did not attach"

before=$(insert_failed)
cli run --target=10.78.0.2:9000 --concurrency=40 --duration=3s --connect-timeout=1s \
  --threshold='error_rate < 1' --report=report.json >run.log 2>&1 || fail "the run exited $?"
after=$(insert_failed)
kernel=$((after - before))

conntrack_max=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
agent() { json report.json "next(a for a in r['agents'] if a['name'] == '$1')$2"; }
[[ $(agent node "['conntrack']['max']") -eq $conntrack_max ]] ||
  fail "node's conntrack max $(agent node "['conntrack'].get('max')"), the kernel's $conntrack_max"
[[ $(agent node "['conntrack']['peak_count']") -ge 20 ]] ||
  fail "node's conntrack peak $(agent node "['conntrack'].get('peak_count')"): the NAT held 20 flows"
reported=$(agent node "['kernel_counters'].get('ConntrackInsertFailed', 0)")
[[ $kernel -gt 0 ]] || fail "the NAT never ran out of ports (insert_failed did not move)"
# The report's delta runs from the shard's start to the agent's last telemetry, inside the test's.
[[ $reported -gt 0 && $reported -le $kernel && $((reported * 10)) -ge $((kernel * 8)) ]] ||
  fail "report's ConntrackInsertFailed $reported, the node's kernel counted $kernel"
timeouts=$(json report.json "r['errors'].get('ETIMEDOUT', 0) + sum(v for k, v in r['errors'].items() if 'timeout' in k)")
[[ $timeouts -gt 0 ]] || fail "no connect timeouts, errors: $(json report.json "r['errors']")"
observations=$(json report.json "'\n'.join(r['observations'])")
grep -q "could not insert [0-9]* new flows" <<<"$observations" ||
  fail "no sentence on the failed inserts: $observations"
grep -q "come from 10.78.0.1, none of the agents' 3 source addresses" <<<"$observations" ||
  fail "no sentence on the NAT: $observations"
# The table held a few dozen entries of the kernel's $conntrack_max: not full, whatever it dropped.
! grep -q "table on .* was full" <<<"$observations" || fail "a table called full: $observations"
echo "nat_test: 40 connections through 20 NAT ports: the node's kernel failed $kernel inserts," \
  "the report $reported; it names the NAT's address and SNAT port exhaustion"
echo "$observations" | sed 's/^/  * /'
