#!/usr/bin/env bash
# A busy host cannot flip a verdict (the kernel-rulebook issue, item 7). The coordinator runs on
# one CPU; one second into an 8 s run, four busy loops as nice as it take that CPU for 5 s (it
# gets a fifth of it) and, as a CPU quota (cgroup cpu.max) would, the coordinator is held off
# 600 ms of every 800 ms, so its ticks and its reading of the agents' telemetry come late. Two
# agents and the target on the other CPU run 100/s each. The run must still complete with verdict
# pass and exit 0, no agent lost, every connection counted (the report's attempted against the
# connections the target accepted, by its own count, within 2%), and the coordinator must have
# been delayed past its own notice (churnlab_coordinator_stalled_seconds_total on /metrics, at
# least 0.5 s), or the test starved nothing. Then the coordinator stopped outright (SIGSTOP) for
# 1 s mid-run: the same. (An agent waits 1.5 s for the answer to each keepalive ping, sent every
# second: a stop much past a second loses agents by design, as faults part 2 tests; 2 s lost one
# now and then on a busy machine, "its stream closed".)
# The starved part runs alone (ctest RUN_SERIAL): the busy loops take a CPU from everything
# else. The stopped part loads nothing and runs beside other tests.
# Usage: contention_test.sh BIN_DIR [starved|stopped]   (both when neither is named)
source "$(dirname "$0")/../support/shell_test.sh" contention_test "$@"
if (($(nproc) < 2)); then
  echo "contention_test: skipped: needs two CPUs (one starved, one for the agents)"
  exit 77
fi
select_parts "starved stopped" "${@:2}"
# The starved part: the coordinator on CPU 0, the agents, the target and the CLI on CPU 1. The
# stopped part alone places nothing (it runs beside other tests).
on_starved=()
on_spare=()
if [[ " ${parts[*]} " == *" starved "* ]]; then
  on_starved=(taskset -c 0)
  on_spare=(taskset -c 1)
fi
# With the coordinator at nice 19, four loops at nice 0 stalled its ticks 0.9 to 1.9 s in all
# (stalls of over 250 ms each) on the 2-core machine of bench/RESULTS.md; at nice -5, 2.5 s, and
# now and then one stall passed the agents' keepalive (1 s pings, 1.5 s to answer); at nice -10
# always. The agents then stop their load on their own (the dead-man switch) and the run is cut,
# as it must be for a coordinator that cannot be told from a dead one. How much the loops alone
# delay depends on the scheduler (a CI machine's stalled 0.4 s in all, under the 0.5 s this test
# must see), so the quota makes the delay certain; each hold (600 ms) stays far inside the
# keepalive as long as the coordinator runs in the 200 ms between two holds. At nice 19 against
# the loops it sometimes did not (2 of 14 runs here lost an agent: two holds and the window
# between them, past 1.5 s), so it keeps nice 0 and a fifth of its CPU: stalled 3.1 to 3.2 s in
# all in 5 runs, against 3.0 to 3.4 s at nice 19.
hogs_nice=${CONTENTION_HOGS_NICE:-0}
hogs_count=${CONTENTION_HOGS:-4}

"${on_starved[@]}" "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 \
  --http-listen=127.0.0.1:0 --address-file=grpc --http-address-file=http --db=runs.db \
  >coordinator.log 2>&1 &
coordinator_pid=$!
pids+=($!)
"${on_spare[@]}" "$bin/churnlab-target" --listen=127.0.0.1:0 --address-file=target \
  --stats-interval=200ms >target.log 2>&1 &
pids+=($!)
need_file grpc
need_file http
need_file target
c=$(cat grpc)
target_address=$(cat target)
for i in 1 2; do
  "${on_spare[@]}" "$bin/churnlab-agent" --coordinator="$c" --name="a$i" \
    --source-ips="127.0.0.$((i + 1))" >"a$i.log" 2>&1 &
  pids+=($!)
done
attached() { "$bin/churnlab" agents --coordinator="$c" 2>/dev/null | grep -c '^a[12] ' || true; }
for _ in $(seq 100); do [[ $(attached) -eq 2 ]] && break; sleep 0.1; done
[[ $(attached) -eq 2 ]] || fail "agents did not attach"
# The target's own count of connections accepted (its stats line, every 200 ms).
accepted() { grep -o 'accepted=[0-9]*' target.log | tail -n 1 | cut -d= -f2; }
stalled_s() {
  curl -s "http://$(cat http)/metrics" |
    awk '/^churnlab_coordinator_stalled_seconds_total/ {print $2}'
}

start_run() {  # start_run NAME: an 8 s run at 200/s in the background ($run)
  sleep 0.5
  before_accepted=$(accepted)
  before_stalled=$(stalled_s)
  "${on_spare[@]}" "$bin/churnlab" run --coordinator="$c" --target="$target_address" \
    --rate=200 --duration=8s --threshold='error_rate < 0.01' --report="$1.json" \
    >"$1.log" 2>&1 &
  run=$!
  # The run is under way once the CLI prints its first progress line (10 s at most): a busy
  # machine starts it late, and a hold that came before it would test nothing.
  for _ in $(seq 100); do grep -q 's  ok [0-9]*/s' "$1.log" && break; sleep 0.1; done
}

check_run() {  # check_run NAME: the run's exit code and report against the kernel
  local name=$1 code=0
  wait "$run" || code=$?
  [[ -f $name.json ]] || fail "$name: no report: $(tail -5 "$name.log")"
  local attempted lost verdict delta stalled
  attempted=$(json "$name.json" 'r["totals"]["attempted"]')
  lost=$(json "$name.json" 'sum(1 for a in r["agents"] if a.get("lost_after_s", 0) > 0)')
  verdict=$(json "$name.json" 'r["verdict"]')
  sleep 0.5  # the target's next stats line
  delta=$(($(accepted) - before_accepted))
  stalled=$(python3 -c "print(round($(stalled_s) - $before_stalled, 1))")
  echo "   exit $code, verdict $verdict, agents lost $lost, attempted $attempted, accepted by" \
    "the target $delta; the coordinator stalled ${stalled} s in all"
  ((code == 0)) || fail "$name: exit $code: $(tail -5 "$name.log")"
  [[ $verdict == pass ]] || fail "$name: verdict $verdict"
  ((lost == 0)) || fail "$name: $lost agent(s) lost"
  ((attempted * 100 >= delta * 98 && attempted * 100 <= delta * 102)) ||
    fail "$name: the report says $attempted attempted, the target accepted $delta"
  python3 -c "import sys; sys.exit(0 if $stalled >= 0.5 else 1)" ||
    fail "$name: the coordinator stalled only ${stalled} s: the test delayed nothing"
}

part_starved() {
  echo "== the coordinator starved of CPU ($hogs_count busy loops at nice $hogs_nice and a 600/800 ms quota) for 5 s"
  start_run starved
  hogs=()
  for _ in $(seq "$hogs_count"); do
    taskset -c 0 nice -n "$hogs_nice" bash -c 'while :; do :; done' &
    hogs+=($!)
    pids+=($!)
  done
  for _ in $(seq 6); do  # 6 x 800 ms, about 4.8 s; every hold oversleeps a 100 ms tick by 500 ms
    kill -STOP "$coordinator_pid"
    sleep 0.6
    kill -CONT "$coordinator_pid"
    sleep 0.2
  done
  sleep 0.5
  kill "${hogs[@]}" 2>/dev/null || true
  wait "${hogs[@]}" 2>/dev/null || true
  check_run starved
}

part_stopped() {
  echo "== the coordinator stopped (SIGSTOP) for 1 s mid-run"
  start_run stopped
  sleep 1
  kill -STOP "$coordinator_pid"
  sleep 1
  kill -CONT "$coordinator_pid"
  check_run stopped
}

run_parts
