#!/usr/bin/env bash
# End-to-end on the network-namespace lab (deploy/netns/lab.sh): a coordinator, a target and four
# agents, each in a namespace of its own with its own addresses on 10.77.0.0/16.
#  0. The lab touches only what it made: `up` refuses a prefix under which someone else's
#     namespace exists (and leaves it and what runs in it alone), `down` of one lab leaves another
#     lab and a foreign namespace alone, and options go before or after the command.
#  1. `churnlab compare` of the TIME_WAIT scenario: the single source runs out of ports
#     (EADDRNOTAVAIL), the run spread over the four agents does not, and it could go on: every
#     source's share is within its budget (agents get 50/s each; agent1 has 4 addresses left
#     besides the single run's, 4 x 1,000 / 60 s = 67/s; the others 5, 83/s). The report credits
#     each agent's traffic to that agent's own addresses.
#  2. A network cut: one agent's link goes down mid-run. The coordinator marks it lost within
#     3 s (gRPC keepalive), the report says so, the agent stops its load by itself, and the
#     others finish the run.
# Needs root; exits 77 (skipped) without it.
# Usage: tests/multihost/lab_test.sh BIN_DIR
bin_dir=$(realpath "${1:?usage: lab_test.sh BIN_DIR}")
cd "$(dirname "$0")/../.."
repo=$PWD
if [[ $(id -u) -ne 0 ]]; then
  echo "lab_test: skipped: needs root for network namespaces"
  exit 77
fi
lab=$repo/deploy/netns/lab.sh
prefix=lt$$
other=lu$$
source "$repo/tests/support/shell_test.sh" lab_test "$bin_dir"
# Namespaces standing for someone else's: made and removed by this test, never by lab.sh.
foreign=("$prefix-a" "$other-x")
# The labs first: `down` stops everything inside them.
trap 'bash "$lab" down --prefix="$prefix" || true; bash "$lab" down --prefix="$other" || true
  for ns in "${foreign[@]}"; do ip netns del "$ns" 2>/dev/null || true; done; cleanup' EXIT
on() { local host=$1; shift; bash $lab exec --prefix="$prefix" "$host" "$@"; }
ns_exists() { ip netns list | awk -v ns="$1" '$1 == ns { found = 1 } END { exit !found }'; }

echo "== 0. the lab touches only what it made"
ip netns add "$prefix-a"
ip netns exec "$prefix-a" sleep 600 &
foreign_pid=$!
pids+=($!)
if bash $lab up --prefix="$prefix" --agents=1 2>"$work/refused.err"; then
  fail "up --prefix=$prefix went ahead over the foreign namespace $prefix-a"
fi
grep -q "refused.*$prefix-a" "$work/refused.err" ||
  fail "the refusal does not name $prefix-a: $(cat "$work/refused.err")"
[[ -z "$(bash $lab hosts --prefix="$prefix")" ]] || fail "the refused up made hosts"
bash $lab down --prefix="$prefix"
ns_exists "$prefix-a" || fail "up/down removed the foreign namespace $prefix-a"
kill -0 $foreign_pid 2>/dev/null || fail "up/down killed what ran in the foreign $prefix-a"
kill $foreign_pid
wait $foreign_pid 2>/dev/null || true
ip netns del "$prefix-a"
# Two labs at once, one with its options before the command; a foreign namespace in one's prefix.
bash $lab --prefix="$other" --agents=1 up >/dev/null
bash $lab up --prefix="$prefix" --agents=4 --extra-ips=4 --port-range="40000 40999" --tw-reuse=0
ip netns add "$other-x"
ip netns exec "$other-x" sleep 600 &
foreign_pid=$!
pids+=($!)
bash $lab down --prefix="$other"
ns_exists "$other-x" || fail "down --prefix=$other removed the foreign $other-x"
kill -0 $foreign_pid 2>/dev/null || fail "down --prefix=$other killed what ran in $other-x"
[[ -z "$(bash $lab hosts --prefix="$other")" ]] || fail "down --prefix=$other left hosts behind"
hosts=$(bash $lab hosts --prefix="$prefix" | xargs)
[[ "$hosts" == "coordinator target agent1 agent2 agent3 agent4" ]] ||
  fail "down --prefix=$other touched lab $prefix: its hosts are now '$hosts'"
echo "ok: up refused over $prefix-a (named; it and its process survived); down of $other left" \
  "lab $prefix and $other-x alone"

coordinator=10.77.0.1:7400
# Not loopback, so the coordinator wants a token; everyone in the lab gets it.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
auth=--token-file="$work/token"
on coordinator "$bin/churnlab-coordinator" --grpc-listen=$coordinator "$auth" \
  --http-listen=10.77.0.1:7401 --db="$work/runs.db" >"$work/coordinator.log" 2>&1 &
coordinator_pid=$!
pids+=($!)
on target "$bin/churnlab-target" --listen=10.77.0.2:9000 --coordinator=$coordinator "$auth" \
  --name=target >"$work/target.log" 2>&1 &
pids+=($!)
for i in 1 2 3 4; do
  on "agent$i" "$bin/churnlab-agent" --coordinator=$coordinator --name="agent$i" "$auth" \
    --source-ips="10.77.1.$i,10.77.2.$i,10.77.3.$i,10.77.4.$i,10.77.5.$i" \
    --allow-targets=10.77.0.0/16 >"$work/agent$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 100); do
  kill -0 $coordinator_pid 2>/dev/null || fail "the coordinator exited"
  n=$(on coordinator "$bin/churnlab" agents --coordinator=$coordinator "$auth" 2>/dev/null |
      grep -c '^agent[1-4] ' || true)
  [[ $n -eq 4 ]] && break
  sleep 0.1
done
[[ $n -eq 4 ]] || fail "only $n of 4 agents attached"

echo "== 1. compare: one source versus four agents"
on coordinator "$bin/churnlab" compare --coordinator=$coordinator "$auth" --spec="$repo/scenarios/time-wait.json" \
  --target=10.77.0.2:9000 --report="$work/compare.json" >"$work/compare.out" || true
cat "$work/compare.out"
single_noport=$(json "$work/compare.json" "r['single']['errors'].get('EADDRNOTAVAIL', 0)")
spread_noport=$(json "$work/compare.json" "r['distributed']['errors'].get('EADDRNOTAVAIL', 0)")
spread_agents=$(json "$work/compare.json" "len(r['distributed']['agents'])")
spread_budget=$(json "$work/compare.json" "round(r['distributed']['tuple_budget']['total_rate'])")
# Sources asked for more than their ports sustain in the spread run (they would fail, given time).
over=$(json "$work/compare.json" "' '.join(s['ip']
  for s in r['distributed']['tuple_budget']['sources']
  if s.get('requested_rate', 0) > s.get('budget_rate', 0))")
[[ $single_noport -gt 0 ]] || fail "the single source never ran out of ports"
[[ $spread_noport -eq 0 ]] || fail "the spread run hit EADDRNOTAVAIL $spread_noport times"
[[ $spread_agents -eq 4 ]] || fail "the spread run used $spread_agents agents, not 4"
# It must sustain the rate, not merely end before its ports run out.
[[ $spread_budget -ge 200 ]] || fail "the spread run's tuple budget is $spread_budget/s, not 200"
[[ -z "$over" ]] || fail "the spread run asks more of $over than their ports sustain"
# Every agent's traffic comes from its own addresses, and each carried some.
json "$work/compare.json" "all(s['ip'].endswith('.' + a['name'][-1]) and int(s['succeeded']) > 0
  for a in r['distributed']['agents'] for s in a['sources'])" | grep -qx True ||
  fail "a source in the spread run is not its agent's own address, or carried nothing"
echo "ok: single source EADDRNOTAVAIL=$single_noport, spread over 4 agents: none" \
  "(tuple budget $spread_budget/s)"

echo "== 2. network cut: agent3's link goes down mid-run"
on coordinator "$bin/churnlab" run --coordinator=$coordinator "$auth" --target=10.77.0.2:9000 --rate=100 \
  --duration=10s --name=cut --report="$work/cut.json" >"$work/cut.out" 2>&1 &
run_pid=$!
sleep 4
on agent3 ip link set eth0 down
cut_ms=$(($(date +%s%N) / 1000000))
lost_after=""
# When the coordinator marked it lost is its own record (last_seen of a lost agent, to the ms),
# not when this loop happened to ask: a busy machine delays the asking, not the detection.
for _ in $(seq 100); do
  lost_at=$(on coordinator curl -s -H "Authorization: Bearer $(cat "$work/token")" \
    http://10.77.0.1:7401/api/agents | python3 -c '
import datetime, json, sys
agents = json.load(sys.stdin)["agents"]
for a in agents:
    if a["hello"]["name"] == "agent3" and a["state"] == "lost":
        t = datetime.datetime.fromisoformat(a["last_seen"].replace("Z", "+00:00"))
        print(round(t.timestamp() * 1000))' || true)
  if [[ -n "$lost_at" ]]; then
    lost_after=$((lost_at - cut_ms))
    break
  fi
  sleep 0.1
done
[[ -n "$lost_after" ]] || fail "the coordinator did not mark agent3 lost within 10 s"
echo "coordinator marked agent3 lost ${lost_after} ms after the cut"
[[ $lost_after -le 3000 ]] || fail "noticed after ${lost_after} ms, more than 3 s"
wait $run_pid || true
cat "$work/cut.out"
problem=$(json "$work/cut.json" "[a['problem'] for a in r['agents'] if a['name'] == 'agent3'][0]")
[[ "$problem" == lost* ]] || fail "agent3's problem in the report: '$problem'"
others=$(json "$work/cut.json" "sum(1 for a in r['agents'] if a['name'] != 'agent3' and not a['problem'])")
[[ $others -eq 3 ]] || fail "$others of the other 3 agents finished cleanly"
grep -q "lost the coordinator.*stopped all load" "$work/agent3.log" ||
  fail "agent3 did not stop its load on its own"
echo "ok: agent3 reported lost ('$problem'); it stopped its own load; the other 3 finished"
