# Shared by demo.sh, the benchmarks and the shell tests: background processes that are always
# stopped on exit. Source it; then `bg CMD...` starts CMD in the background and records it.
work=$(mktemp -d)
pids=()
# kill_tree PID: PID and everything it started (a background function's subshell leaves its
# children behind otherwise). A stopped process (a test's SIGSTOP) is continued so that it can die.
kill_tree() {
  local child
  for child in $(pgrep -P "$1"); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
  kill -CONT "$1" 2>/dev/null || true
}
cleanup() {
  for p in "${pids[@]}"; do kill_tree "$p"; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
bg() {
  "$@" &
  pids+=($!)
}
# wait_file FILE: up to 10 s for a process to write its address file.
wait_file() { for _ in $(seq 200); do [[ -s "$1" ]] && return 0; sleep 0.05; done; return 1; }
