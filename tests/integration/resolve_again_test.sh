#!/usr/bin/env bash
# Names looked up again while a run goes (spec resolve_interval), with the kernel as the witness.
# A network namespace of this test's own has its own /etc/hosts (`ip netns exec` bind-mounts
# /etc/netns/NAME/hosts); the test rewrites it mid-run, moving moving.example from 127.0.0.2 to
# 127.0.0.3, where two churnlab-target processes listen. nftables counters of the SYNs the
# namespace sends toward each address say where every connection went.
#  1. churnlab-churn: connections go to both addresses, each before and after the move, and
#     their sum is the report's succeeded; the report lists both addresses.
#  2. The same through a coordinator and an agent: the report lists both, with the lookups.
#  3. DNS cannot widen the allow-list: moved to 127.0.0.4, outside --allow-targets, the name
#     keeps its address, 127.0.0.4 gets no connection, and the agent logs why.
# Usage: resolve_again_test.sh BIN_DIR
source "$(dirname "$0")/../support/shell_test.sh" resolve_again_test "$@"
if [[ $(id -u) -ne 0 ]]; then
  echo "resolve_again_test: skipped (needs root for a network namespace)"
  exit 0
fi
own_namespace cl-resolve
hosts="/etc/netns/$ns/hosts"
point() { printf '127.0.0.1 localhost\n%s moving.example\n' "$1" >"$hosts"; }  # in place
for ip in 127.0.0.2 127.0.0.3 127.0.0.4; do
  bg in_ns "$bin/churnlab-target" --listen="$ip:9000" --threads=1 --address-file="target-$ip" \
    >"target-$ip.log" 2>&1
done
for ip in 127.0.0.2 127.0.0.3 127.0.0.4; do need_file "target-$ip"; done
# A SYN counter per address (a table of the test's own, gone with the namespace); syns IP: the
# connections opened toward IP:9000 so far.
in_ns nft add table inet cl_resolve
in_ns nft add chain inet cl_resolve out '{ type filter hook output priority 0; }'
for ip in 127.0.0.2 127.0.0.3 127.0.0.4; do
  in_ns nft add counter inet cl_resolve "syn_${ip//./_}"
  in_ns nft add rule inet cl_resolve out ip daddr "$ip" tcp dport 9000 \
    'tcp flags & (syn | ack) == syn' counter name "syn_${ip//./_}"
done
syns() {
  in_ns nft list counter inet cl_resolve "syn_${1//./_}" |
    awk '/packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'
}
# move_when FROM N TO: once N connections were opened toward FROM (20 s at most), point the name
# at TO; a move at a fixed time would fall early in a run a busy machine starts late.
move_when() {
  (
    for _ in $(seq 200); do (($(syns "$1") >= $2)) && break; sleep 0.1; done
    point "$3"
  ) &
  pids+=($!)
}

# 1. churnlab-churn, 6 s at 200/s, looked up every second, moved after 300 connections.
point 127.0.0.2
move_when 127.0.0.2 300 127.0.0.3
in_ns "$bin/churnlab-churn" --target=moving.example:9000 --allow-targets=127.0.0.0/8 --rate=200 \
  --duration=6s --resolve-interval=1s --progress=false --json >churn.json 2>churn.err ||
  fail "churnlab-churn: $(cat churn.err)"
succeeded=$(json churn.json 'r["totals"]["succeeded"]')
listed=$(json churn.json '",".join(sorted(r["resolved_targets"][0]["addresses"]))')
before=$(syns 127.0.0.2)
after=$(syns 127.0.0.3)
echo "churnlab-churn: $succeeded succeeded; SYNs toward 127.0.0.2: $before, 127.0.0.3:" \
  "$after; the report lists $listed"
[[ $listed == "127.0.0.2:9000,127.0.0.3:9000" ]] || fail "the report lists $listed"
((before >= 150 && after >= 150)) || fail "the move did not show: $before / $after"
((before + after == succeeded)) || fail "nftables counts $((before + after)), the report $succeeded"
grep -q "a lookup changed the destinations" churn.err || fail "no word of the move: $(cat churn.err)"

# 2. Through a coordinator and an agent.
base2=$(syns 127.0.0.2)
base3=$(syns 127.0.0.3)
point 127.0.0.2
bg in_ns "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --http-listen= \
  --address-file=grpc.addr >coordinator.log 2>&1
need_file grpc.addr
c=$(cat grpc.addr)
bg in_ns "$bin/churnlab-agent" --coordinator="$c" --name=a1 --allow-targets=127.0.0.2,127.0.0.3 \
  >a1.log 2>&1
for _ in $(seq 100); do in_ns "$bin/churnlab" agents --coordinator="$c" 2>/dev/null |
  grep -q '^a1 ' && break; sleep 0.1; done
move_when 127.0.0.2 $((base2 + 300)) 127.0.0.3
in_ns "$bin/churnlab" run --coordinator="$c" --target=moving.example:9000 --rate=200 \
  --duration=6s --resolve-interval=1s --report=run.json >run.out 2>&1 ||
  fail "the run: $(cat run.out)"
succeeded=$(json run.json 'r["totals"]["succeeded"]')
listed=$(json run.json '",".join(sorted(r["resolved_targets"][0]["addresses"]))')
lookups=$(json run.json 'r["resolved_targets"][0]["lookups"]')
before=$(($(syns 127.0.0.2) - base2))
after=$(($(syns 127.0.0.3) - base3))
echo "agent: $succeeded succeeded, $lookups lookups; SYNs toward 127.0.0.2: +$before," \
  "127.0.0.3: +$after; the report lists $listed"
[[ $listed == "127.0.0.2:9000,127.0.0.3:9000" ]] || fail "the report lists $listed"
((lookups >= 4)) || fail "$lookups lookups in a 6 s run every 1 s"
((before >= 150 && after >= 150)) || fail "the move did not show: +$before / +$after"
((before + after == succeeded)) || fail "nftables counts $((before + after)), the report $succeeded"

# 3. Moved outside the agent's allow-list: refused, the old address kept.
point 127.0.0.3
move_when 127.0.0.3 $(($(syns 127.0.0.3) + 100)) 127.0.0.4
in_ns "$bin/churnlab" run --coordinator="$c" --target=moving.example:9000 --rate=100 \
  --duration=4s --resolve-interval=1s --report=outside.json >outside.out 2>&1 ||
  fail "the run: $(cat outside.out)"
outside=$(syns 127.0.0.4)
echo "moved outside the allow-list: SYNs toward 127.0.0.4: $outside"
((outside == 0)) || fail "$outside connections went to 127.0.0.4, outside the allow-list"
listed=$(json outside.json '",".join(sorted(r["resolved_targets"][0]["addresses"]))')
[[ $listed == "127.0.0.3:9000" ]] || fail "the report lists $listed"
grep -q "127.0.0.4:9000, outside the allowed targets: not used" a1.log ||
  fail "the agent did not say why: $(tail -5 a1.log)"
echo "resolve_again_test: ok"
