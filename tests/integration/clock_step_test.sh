#!/usr/bin/env bash
# A wall-clock step on the coordinator's host (an NTP step, a VM resumed), reproduced with
# Debian's faketime on the coordinator alone, its monotonic clock untouched: 30 s forward 3 s
# into an 8 s run of two agents at 100/s loses neither agent, and the report counts the run's
# 800 connections (it used to mark both lost "34 s into the run" and keep 402). Then 30 s back:
# the same.
# Usage: clock_step_test.sh BIN_DIR
source "$(dirname "$0")/../support/shell_test.sh" clock_step_test "$@"
faketime_lib=$(find /usr/lib -name libfaketimeMT.so.1 2>/dev/null | head -n 1)
if [[ -z $faketime_lib ]]; then
  echo "clock_step_test: skipped: no libfaketime (scripts/install-deps.sh --test installs it)"
  exit 77
fi

echo "+0" >step
FAKETIME_TIMESTAMP_FILE="$work/step" FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 \
  LD_PRELOAD="$faketime_lib" "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 \
  --http-listen=127.0.0.1:0 --address-file=grpc --http-address-file=http --db=runs.db \
  >coordinator.log 2>&1 &
pids+=($!)
"$bin/churnlab-target" --listen=127.0.0.1:0 --address-file=target >target.log 2>&1 &
pids+=($!)
need_file grpc
need_file http
need_file target
c=$(cat grpc)
for i in 1 2; do
  "$bin/churnlab-agent" --coordinator="$c" --name="a$i" --source-ips="127.0.0.$((i + 1))" \
    >"a$i.log" 2>&1 &
  pids+=($!)
done
attached() { "$bin/churnlab" agents --coordinator="$c" 2>/dev/null | grep -c '^a[12] ' || true; }
for _ in $(seq 100); do [[ $(attached) -eq 2 ]] && break; sleep 0.1; done
[[ $(attached) -eq 2 ]] || fail "agents did not attach"
# The coordinator's wall clock, as it shows it (an agent's last_seen is its "now").
coordinator_wall_s() {
  curl -s "http://$(cat http)/api/agents" | python3 -c '
import datetime, json, sys
a = json.load(sys.stdin)["agents"][0]
print(round(datetime.datetime.fromisoformat(a["last_seen"].replace("Z", "+00:00")).timestamp()))'
}

for step in +30 -30; do
  echo "== the coordinator's wall clock steps $step s during a run"
  echo "+0" >step
  "$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --rate=200 --duration=8s \
    --report="run$step.json" >"run$step.log" 2>&1 &
  run=$!
  sleep 3
  echo "$step" >step
  sleep 1
  skew=$(($(coordinator_wall_s) - $(date +%s)))
  code=0
  wait "$run" || code=$?
  attempted=$(json "run$step.json" 'r["totals"]["attempted"] + r["totals"].get("late_starts", 0)')
  lost=$(json "run$step.json" 'sum(1 for a in r["agents"] if a.get("lost_after_s", 0) > 0)')
  echo "   coordinator's wall clock ${skew} s off the host's; exit $code; agents lost: $lost;" \
    "attempted or late-skipped: $attempted of 1600"
  sign=${step:0:1}1
  ((skew * sign >= 25)) || fail "the step did not reach the coordinator (${skew} s)"
  ((lost == 0)) || fail "$lost agent(s) lost over a wall-clock step"
  ((code == 0)) || fail "the run exited $code: $(tail -n 3 "run$step.log")"
  ((attempted == 1600)) || fail "the report counts $attempted of the run's 1,600 starts"
done
echo "clock_step_test: passed"
