#!/usr/bin/env bash
# What `churnlab run` waits for, on the real binaries (loopback): its agents (--expect-agents=N)
# and a progress stream that broke.
#  1. No agent comes: it gives up after --expect-agents-timeout, exit 3, saying who is there.
#  2. Two agents attach one after the other while it waits: it says who is there as that changes
#     and starts once both are idle; the report has both.
#  3. Bad values exit 2 naming the flag.
#  4. The coordinator stopped (SIGSTOP) for 4 s mid-run, past the CLI channel's keepalive: the
#     progress stream breaks, `churnlab run` watches again and ends with the run's final report
#     (exit 0 or 1 by its verdict), not "lost the run's progress" (exit 3).
# Usage: run_waits_test.sh BIN_DIR
source "$(dirname "$0")/../support/shell_test.sh" run_waits_test "$@"
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
# a1 comes once the run has said it waits with none there (a busy machine runs the CLI late).
for _ in $(seq 100); do grep -q "waiting for 2 agent(s): 0 ready" two.out && break; sleep 0.1; done
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

# 4. A progress stream that breaks is watched again.
coordinator_pid=${pids[0]}
code=0
run --rate=50 --duration=6s --report=rewatch.json >rewatch.out 2>&1 &
waiter=$!
pids+=("$waiter")
# Stopped once the run has started (10 s at most), so that the stream breaks mid-run.
for _ in $(seq 100); do grep -q "^run .* on [0-9]* agent(s)" rewatch.out && break; sleep 0.1; done
sleep 0.5
kill -STOP "$coordinator_pid"
sleep 4
kill -CONT "$coordinator_pid"
wait "$waiter" || code=$?
((code == 0 || code == 1)) || fail "a broken stream ended the CLI with exit $code: $(cat rewatch.out)"
grep -q "the progress stream broke (.*); watching again" rewatch.out ||
  fail "the stream never broke, so nothing was tested: $(cat rewatch.out)"
[[ -n $(json rewatch.json 'r["run_id"]') ]] || fail "no final report: $(cat rewatch.out)"
echo "the coordinator stopped 4 s: the CLI watched again and got the final report (exit $code)"
echo "run_waits_test: ok"
