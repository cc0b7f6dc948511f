# What the shell tests share. Source it with the test's name and its BIN_DIR argument:
#   source tests/support/shell_test.sh NAME "$@"
# It sets $bin (absolute), makes and enters a scratch directory ($work), records background
# processes in pids (pids+=($!)) and on exit runs $before_cleanup (if set), kills them and
# removes the scratch directory.
set -euo pipefail
test_name=$1
bin=$(realpath "${2:?usage: $test_name.sh BIN_DIR}")
work=$(mktemp -d)
pids=()
before_cleanup=${before_cleanup:-}
cleanup() {
  [[ -z "$before_cleanup" ]] || $before_cleanup
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
# fail MESSAGE: says what broke, shows the end of every log, exits 1.
fail() {
  echo "$test_name: FAILED: $*" >&2
  for f in "$work"/*.log; do [[ -f "$f" ]] && { echo "--- $f" >&2; tail -n 5 "$f" >&2; }; done
  exit 1
}
# wait_file FILE: up to 5 s for a process to write it.
wait_file() { for _ in $(seq 100); do [[ -s "$1" ]] && return 0; sleep 0.05; done; fail "no $1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# json FILE EXPR: EXPR (Python, over the parsed file as r) printed.
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
