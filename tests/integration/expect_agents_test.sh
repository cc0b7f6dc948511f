#!/usr/bin/env bash
# `churnlab run --expect-agents=N` on the real binaries (loopback):
#  1. No agent comes: it gives up after --expect-agents-timeout, exit 3, saying who is there.
#  2. Two agents attach one after the other while it waits: it says who is there as that changes
#     and starts once both are idle; the report has both.
#  3. Bad values exit 2 naming the flag.
# Usage: expect_agents_test.sh BIN_DIR
source "$(dirname "$0")/../support/shell_test.sh" expect_agents_test "$@"
bg "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --address-file=grpc.addr >coordinator.log 2>&1
need_file grpc.addr
coordinator=$(cat grpc.addr)
bg "$bin/churnlab-target" --listen=127.0.0.1:0 --address-file=target.addr >target.log 2>&1
need_file target.addr
run() { "$bin/churnlab" run --coordinator="$coordinator" --target="$(cat target.addr)" --rate=50 \
  --duration=1s "$@"; }

# 1. Nobody comes.
code=0
run --expect-agents=1 --expect-agents-timeout=1s >none.out 2>&1 || code=$?
[[ $code -eq 3 ]] || fail "no agent: exit $code, want 3: $(cat none.out)"
grep -q "expect-agents=1: after 1s only 0 attached and idle" none.out || fail "no agent: $(cat none.out)"

# 2. Two come, one after the other.
run --expect-agents=2 --expect-agents-timeout=30s --report=report.json >two.out 2>&1 &
waiter=$!
pids+=("$waiter")
sleep 1
bg "$bin/churnlab-agent" --coordinator="$coordinator" --name=a1 --source-ips=127.0.0.2 >a1.log 2>&1
for _ in $(seq 100); do grep -q "1 ready (a1)" two.out && break; sleep 0.1; done
grep -q "waiting for 2 agent(s): 0 ready" two.out || fail "it did not say no agent was there: $(cat two.out)"
grep -q "waiting for 2 agent(s): 1 ready (a1)" two.out || fail "it did not say a1 came: $(cat two.out)"
kill -0 "$waiter" 2>/dev/null || fail "the run did not wait for the second agent: $(cat two.out)"
bg "$bin/churnlab-agent" --coordinator="$coordinator" --name=a2 --source-ips=127.0.0.3 >a2.log 2>&1
wait "$waiter" || fail "the run failed: $(cat two.out)"
[[ $(json report.json 'len(r["agents"])') -eq 2 ]] || fail "the run did not use both agents: $(cat two.out)"
echo "waited for a1, then a2; the run used both"

# 3. Bad values.
for bad in --expect-agents=-1 --expect-agents=x --expect-agents-timeout=0s; do
  code=0
  run "$bad" >bad.out 2>&1 || code=$?
  [[ $code -eq 2 ]] && grep -q -- "${bad%%=*}" bad.out || fail "$bad: exit $code: $(cat bad.out)"
done
echo "expect_agents_test: ok"
