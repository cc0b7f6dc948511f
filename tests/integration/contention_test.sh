#!/usr/bin/env bash
# A busy host cannot flip a verdict (the kernel-rulebook issue, item 7). The coordinator runs on
# one CPU at nice 19 while eight busy loops at nice -20 share that CPU: the scheduler gives it a
# few milliseconds every few seconds, so its ticks and its reading of the agents' telemetry come
# seconds late. Two agents on the other CPU run an 8 s run at 100/s each against a target beside
# them. The run must still complete with verdict pass and exit 0, no agent lost, every
# connection counted (the report's attempted within 2% of the kernel's ActiveOpens toward the
# target), and the coordinator must have noticed its own stalls (its log). Then the same
# coordinator stopped outright (SIGSTOP) for 4 s mid-run: the same outcome.
# Run alone (ctest RUN_SERIAL): the busy loops take a CPU from everything else.
# Usage: contention_test.sh BIN_DIR
source "$(dirname "$0")/../support/shell_test.sh" contention_test "$@"
if (($(nproc) < 2)); then
  echo "contention_test: skipped: needs two CPUs (one starved, one for the agents)"
  exit 77
fi
starved=0
spare=1

taskset -c "$starved" nice -n 19 "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 \
  --http-listen=127.0.0.1:0 --address-file=grpc --http-address-file=http --db=runs.db \
  >coordinator.log 2>&1 &
coordinator_pid=$!
pids+=($!)
taskset -c "$spare" "$bin/churnlab-target" --listen=127.0.0.1:0 --address-file=target \
  >target.log 2>&1 &
pids+=($!)
need_file grpc
need_file target
c=$(cat grpc)
for i in 1 2; do
  taskset -c "$spare" "$bin/churnlab-agent" --coordinator="$c" --name="a$i" \
    --source-ips="127.0.0.$((i + 1))" >"a$i.log" 2>&1 &
  pids+=($!)
done
attached() { "$bin/churnlab" agents --coordinator="$c" 2>/dev/null | grep -c '^a[12] ' || true; }
for _ in $(seq 100); do [[ $(attached) -eq 2 ]] && break; sleep 0.1; done
[[ $(attached) -eq 2 ]] || fail "agents did not attach"
target_address=$(cat target)
target_port=${target_address##*:}

check_run() {  # check_run NAME: the run's report and exit code against the target's count
  local name=$1 code=$2
  local attempted lost verdict
  attempted=$(json "$name.json" 'r["totals"]["attempted"]')
  lost=$(json "$name.json" 'sum(1 for a in r["agents"] if a.get("lost_after_s", 0) > 0)')
  verdict=$(json "$name.json" 'r["verdict"]')
  local served
  served=$(ss -Htan state time-wait "( dport = :$target_port )" | wc -l)
  echo "   exit $code, verdict $verdict, agents lost $lost, attempted $attempted," \
    "client TIME_WAIT toward the target $served"
  ((code == 0)) || fail "$name: exit $code: $(tail -5 "$name.log")"
  [[ $verdict == pass ]] || fail "$name: verdict $verdict"
  ((lost == 0)) || fail "$name: $lost agent(s) lost"
  # Every connection closed client-first left one TIME_WAIT toward the target's port: the
  # kernel's count of the run's connections (60 s outlive the test's runs).
  local delta=$((served - before_tw))
  ((attempted * 100 >= delta * 98 && attempted * 100 <= delta * 102)) ||
    fail "$name: report says $attempted attempted, the kernel $delta connections"
}

echo "== the coordinator starved of CPU for the whole run"
hogs=()
for _ in $(seq 8); do
  taskset -c "$starved" nice -n -20 bash -c 'while :; do :; done' &
  hogs+=($!)
  pids+=($!)
done
before_tw=$(ss -Htan state time-wait "( dport = :$target_port )" | wc -l)
code=0
"$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --rate=200 --duration=8s \
  --threshold='error_rate < 0.01' --report=starved.json >starved.log 2>&1 || code=$?
kill "${hogs[@]}" 2>/dev/null || true
wait "${hogs[@]}" 2>/dev/null || true
check_run starved "$code"
stalls=$(grep -c "stalled" coordinator.log || true)
echo "   the coordinator noticed $stalls stall(s) of its own"
((stalls > 0)) || fail "the coordinator was never delayed: the test starved nothing ($(tail -3 coordinator.log))"

echo "== the coordinator stopped (SIGSTOP) 4 s mid-run"
before_tw=$(ss -Htan state time-wait "( dport = :$target_port )" | wc -l)
code=0
"$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --rate=200 --duration=8s \
  --threshold='error_rate < 0.01' --report=stopped.json >stopped.log 2>&1 &
run=$!
sleep 2
kill -STOP "$coordinator_pid"
sleep 4
kill -CONT "$coordinator_pid"
wait "$run" || code=$?
check_run stopped "$code"
echo "contention_test: passed"
