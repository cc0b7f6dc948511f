# What the shell tests share, on top of scripts/lib.sh (the scratch directory $work, background
# processes in pids that are stopped on exit, wait_file). Source it with the test's name and its
# BIN_DIR argument:
#   source tests/support/shell_test.sh NAME "$@"
# It sets $bin (absolute) and enters $work.
set -euo pipefail
test_name=$1
bin=$(realpath "${2:?usage: $test_name.sh BIN_DIR}")
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
cd "$work"
# fail MESSAGE: says what broke, shows the end of every log, exits 1.
fail() {
  echo "$test_name: FAILED: $*" >&2
  for f in "$work"/*.log; do [[ -f "$f" ]] && { echo "--- $f" >&2; tail -n 5 "$f" >&2; }; done
  exit 1
}
# need_file FILE: waits for a process to write FILE, or fails the test.
need_file() { wait_file "$1" || fail "no $1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# select_parts "ALL" [PART...]: a test in parts (functions part_NAME) sets $parts to the PARTs
# named, all of ALL (a space-separated list) when none is; a name ALL lacks fails the test.
# run_parts then runs them in that order, and says which passed. ctest runs each part as a test
# of its own (tests/CMakeLists.txt).
select_parts() {
  local all part
  read -ra all <<<"$1"
  shift
  parts=("$@")
  ((${#parts[@]})) || parts=("${all[@]}")
  for part in "${parts[@]}"; do
    [[ " ${all[*]} " == *" $part "* ]] || fail "no part '$part' (${all[*]})"
  done
}
run_parts() {
  local part
  for part in "${parts[@]}"; do "part_$part"; done
  echo "$test_name: passed (parts ${parts[*]})"
}
# json FILE EXPR: EXPR (Python, over the parsed file as r) printed.
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
# own_namespace PREFIX: a network namespace of the test's own (make_namespace), "$PREFIX-$$" in
# $ns, with an /etc/netns/$ns/ that `ip netns exec` bind-mounts over /etc (its resolv.conf,
# hosts); in_ns runs a command inside. Both go on exit. The caller has checked it is root.
own_namespace() {
  ns="$1-$$"
  make_namespace "$ns"
  mkdir -p "/etc/netns/$ns"
  trap 'rm -rf "/etc/netns/$ns"; cleanup' EXIT
}
