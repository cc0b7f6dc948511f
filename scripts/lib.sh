# Shared by demo.sh and bench/run.sh: background processes that are always stopped on exit.
# Source it; then `bg CMD...` starts CMD in the background and records it for the cleanup.
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
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
