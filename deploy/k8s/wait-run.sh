#!/usr/bin/env bash
# Waits for a run Job (deploy/k8s/run.sh makes one and calls this) and returns as soon as it
# completes or fails, never later: prints the run's log (the table and the JSON report) and
# exits with the run's verdict (0 pass, 1 a threshold failed or an agent was lost, 2 bad input, 3
# could not run; 4 the Job failed without a verdict, e.g. its deadline; 5 the wait timed out; 6
# kubectl could not answer: no cluster, no such Job or namespace, no permission, said in
# kubectl's own words at the first poll).
# `kubectl wait` takes one condition, so a wait for `complete` sees a failed Job only at its own
# timeout; this asks for the Job's conditions every two seconds (--interval) instead.
# Usage: deploy/k8s/wait-run.sh --job=NAME [--namespace=churnlab] [--timeout=SECONDS (2400)] [--interval=SECONDS (2)]
set -euo pipefail
namespace=churnlab
job=""
timeout=2400
interval=2
for arg in "$@"; do
  case "$arg" in
    --namespace=*) namespace=${arg#*=} ;;
    --job=*) job=${arg#*=} ;;
    --timeout=*) timeout=${arg#*=} ;;
    --interval=*) interval=${arg#*=} ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "wait-run.sh: unknown argument '$arg' (--namespace=NS, --job=NAME, --timeout=SECONDS, --interval=SECONDS)" >&2; exit 2 ;;
  esac
done
[[ -n "$job" ]] || { echo "wait-run.sh: --job=NAME is required (run.sh prints the name of the Job it made)" >&2; exit 2; }
[[ "$timeout" =~ ^(0|[1-9][0-9]*)$ ]] || { echo "wait-run.sh: --timeout=$timeout: want seconds" >&2; exit 2; }
[[ "$interval" =~ ^[0-9]+([.][0-9]+)?$ ]] ||
  { echo "wait-run.sh: --interval=$interval: want seconds" >&2; exit 2; }
k() { kubectl -n "$namespace" "$@"; }
deadline=$((SECONDS + timeout))
err=$(mktemp)
trap 'rm -f "$err"' EXIT
while :; do
  # "Complete=True Failed=False ..." (FailureTarget and SuccessCriteriaMet come first on 1.31+)
  asked=0
  conditions=$(k get "job/$job" \
    -o jsonpath='{range .status.conditions[*]}{.type}={.status}{" "}{end}' 2>"$err") || asked=$?
  if ((asked != 0)); then
    echo "wait-run.sh: kubectl could not answer for job/$job in namespace $namespace:" >&2
    cat "$err" >&2
    exit 6
  fi
  case " $conditions " in
    *" Complete=True "* | *" SuccessCriteriaMet=True "*) state=complete ;;
    *" Failed=True "* | *" FailureTarget=True "*) state=failed ;;
    *) state="" ;;
  esac
  [[ -n $state ]] && break
  if ((SECONDS >= deadline)); then
    echo "wait-run.sh: job/$job neither completed nor failed in ${timeout}s" >&2
    exit 5
  fi
  sleep "$interval"
done
k logs "job/$job" --tail=-1 || true
[[ $state == complete ]] && { echo "wait-run.sh: the run passed"; exit 0; }
# The verdict is the run container's exit code, when it got that far.
code=$(k get pods -l "job-name=$job" \
  -o jsonpath='{.items[*].status.containerStatuses[?(@.name=="run")].state.terminated.exitCode}' \
  2>/dev/null | awk '{print $NF}' || true)
reason=$(k get "job/$job" \
  -o jsonpath='{.status.conditions[?(@.type=="Failed")].reason}' 2>/dev/null || true)
echo "wait-run.sh: job/$job failed (${reason:-no reason given}), run exit code ${code:-none}" >&2
[[ "$code" =~ ^[1-3]$ ]] && exit "$code"
exit 4
