# Shared by demo.sh, the benchmarks and the shell tests: background processes that are always
# stopped on exit. Source it; then `bg CMD...` starts CMD in the background and records it.
work=$(mktemp -d)
pids=()
# Debian's python3 (with python3-grpcio and the other modules install-deps.sh installs), never a
# shim earlier in PATH: pyenv's took about half a CPU-second a call here, a fifth of all the CPU
# the test suites used. A command run through in_ns or env names /usr/bin/python3 itself.
python3() { /usr/bin/python3 "$@"; }
# kill_tree PID: PID and everything it started (a background function's subshell leaves its
# children behind otherwise). A stopped process (a test's SIGSTOP) is continued so that it can die.
kill_tree() {
  local child
  for child in $(pgrep -P "$1"); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
  kill -CONT "$1" 2>/dev/null || true
}
# make_namespace NAME: a network namespace of this script's own, lo up, removed on exit with every
# process inside; its name is kept under $work, so one made in a subshell goes too. in_ns CMD...
# runs CMD in the namespace named by $ns.
make_namespace() {
  ip netns add "$1"
  echo "$1" >>"$work/namespaces"
  ip -n "$1" link set lo up
}
in_ns() { ip netns exec "$ns" "$@"; }
# drop_namespace NAME: its processes (TERM, then KILL what is left after 5 s), then NAME.
drop_namespace() {
  ip netns pids "$1" 2>/dev/null | xargs -r kill 2>/dev/null || true
  for _ in $(seq 100); do [[ -z $(ip netns pids "$1" 2>/dev/null) ]] && break; sleep 0.05; done
  ip netns pids "$1" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  ip netns del "$1" 2>/dev/null || true
}
cleanup() {
  for p in "${pids[@]}"; do kill_tree "$p"; done
  if [[ -f $work/namespaces ]]; then
    while read -r name; do drop_namespace "$name"; done <"$work/namespaces"
  fi
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
