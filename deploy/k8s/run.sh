#!/usr/bin/env bash
# Starts one run and waits for its verdict: a Job made from the run template (the suspended
# CronJob churnlab-run) under a name of its own, churnlab-run-YYYYMMDD-HHMMSS-XXXX, so the first, the
# second and the tenth run need nothing deleted. The agents stay attached between runs (they
# leave once idle for `exit-when-idle`, 30 minutes in the base). To change what runs, edit your
# overlay's spec.json (or settings) and `kubectl apply -k` it again: the template then names the
# new spec, and the next run uses it.
# Prints the Job's name, then waits with wait-run.sh (beside this script) and exits with its
# code: 0 pass, 1 a threshold failed or an agent was lost, 2 bad input, 3 could not run, 4 the
# Job failed without a verdict, 5 the wait timed out, 6 kubectl could not answer (in its own
# words: no cluster, no template, no permission). --no-wait: print the name and return.
# Usage: deploy/k8s/run.sh [--namespace=churnlab] [--timeout=SECONDS (2400)] [--no-wait]
set -euo pipefail
here=$(dirname "$0")
namespace=churnlab
timeout=2400
wait=1
for arg in "$@"; do
  case "$arg" in
    --namespace=*) namespace=${arg#*=} ;;
    --timeout=*) timeout=${arg#*=} ;;
    --no-wait) wait=0 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$arg' (--namespace=NS, --timeout=SECONDS, --no-wait)" >&2; exit 2 ;;
  esac
done
[[ "$timeout" =~ ^(0|[1-9][0-9]*)$ ]] || { echo "run.sh: --timeout=$timeout: want seconds" >&2; exit 2; }
# UTC time to the second, and 16 random bits for two runs started in one second.
job="churnlab-run-$(date -u +%Y%m%d-%H%M%S)-$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')"
err=$(mktemp)
trap 'rm -f "$err"' EXIT
if ! kubectl -n "$namespace" create job "$job" --from=cronjob/churnlab-run >/dev/null 2>"$err"; then
  echo "run.sh: kubectl could not make job/$job from cronjob/churnlab-run in namespace $namespace:" >&2
  cat "$err" >&2
  exit 6
fi
echo "run.sh: started job/$job (kubectl -n $namespace logs job/$job)"
rm -f "$err"
trap - EXIT
((wait)) || exit 0
exec bash "$here/wait-run.sh" --namespace="$namespace" --job="$job" --timeout="$timeout"
