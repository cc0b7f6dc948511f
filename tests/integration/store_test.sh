#!/usr/bin/env bash
# The run store on a disk that fills, on the real binaries (root: a small tmpfs and a network
# namespace of the test's own, whose ActiveOpens witness every connection):
#  1. A run the store cannot take sends nothing: StartRun fails (exit 3, the store's words), the
#     namespace sees no connection but the CLI's own, and the agent is free for the next run.
#  2. The disk fills mid-run: the run finishes, the CLI says the store failed and exits 1, the
#     report (served from the coordinator's memory) says so, /metrics counts the failed writes.
#  3. Space comes back: the coordinator stores the run by itself, with every series point, and
#     its stored report carries no error.
# Usage: store_test.sh BIN_DIR
source "$(dirname "$0")/../support/shell_test.sh" store_test "$@"
if [[ $(id -u) -ne 0 ]]; then
  echo "store_test: skipped: needs root (a tmpfs mount and a network namespace)"
  exit 77
fi
ns="store-$$"
disk="$work/disk"
mkdir -p "$disk"
mount -t tmpfs -o size=2m tmpfs "$disk"
ip netns add "$ns"
trap 'cleanup_all' EXIT
cleanup_all() {
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  umount "$disk" 2>/dev/null || true
  cleanup
}
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }
active_opens() { in_ns awk '/^Tcp:/ { if (h) print $6; h = 1 }' /proc/net/snmp; }
fill_disk() { dd if=/dev/zero of="$disk/filler" bs=64k 2>/dev/null || true; }
free_disk() { rm -f "$disk/filler"; }

in_ns "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --http-listen=127.0.0.1:0 \
  --address-file=grpc --http-address-file=http --db="$disk/runs.db" >coordinator.log 2>&1 &
pids+=($!)
in_ns "$bin/churnlab-target" --listen=127.0.0.1:0 --address-file=target >target.log 2>&1 &
pids+=($!)
need_file grpc
need_file http
need_file target
c=$(cat grpc)
h=$(cat http)
in_ns "$bin/churnlab-agent" --coordinator="$c" --name=a1 --source-ips=127.0.0.2 >agent.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  listed=$(in_ns "$bin/churnlab" agents --coordinator="$c" 2>/dev/null || true)
  [[ $listed == *"a1 "* ]] && break
  sleep 0.1
done
[[ $listed == *"a1 "* ]] || fail "the agent did not attach"
run() { in_ns "$bin/churnlab" run --coordinator="$c" --target="$(cat target)" "$@"; }

echo "== 1. a run the store cannot take sends nothing"
fill_disk
before=$(active_opens)
set +e
run --rate=100 --duration=1s >refused.log 2>&1
code=$?
set -e
sleep 1.5
sent=$(($(active_opens) - before))
echo "   exit $code: $(tail -n 1 refused.log); ActiveOpens +$sent"
((code == 3)) || fail "StartRun on a full store exited $code"
grep -q "full" refused.log || fail "the CLI does not give the store's error"
grep -q "not started" refused.log || fail "the CLI does not say the run was not started"
# The CLI's own gRPC connection (and its retry) is all the namespace may have made.
((sent <= 2)) || fail "$sent connections were made for a run that failed to start"
free_disk
run --rate=100 --duration=1s --report=after.json >after.log 2>&1 ||
  fail "the next run failed: $(tail -n 3 after.log)"
echo "   the agent was free: the next run passed"

echo "== 2. the disk fills mid-run"
run --rate=100 --duration=4s --report=mid.json >mid.log 2>&1 &
runner=$!
# Filled once the run has started (10 s at most; a busy machine runs the CLI late), a second in.
for _ in $(seq 100); do grep -q "^run .* on [0-9]* agent(s)" mid.log && break; sleep 0.1; done
sleep 1
fill_disk
set +e
wait "$runner"
code=$?
set -e
id=$(json mid.json 'r["run_id"]')
echo "   exit $code; report: state $(json mid.json 'r["state"]'), store_error" \
  "'$(json mid.json 'r.get("store_error", "")')'"
((code == 1)) || fail "a run whose store failed exited $code"
grep -q "run store:" mid.log || fail "the CLI does not say the store failed"
[[ $(json mid.json 'r.get("store_error", "")') == *full* ]] || fail "the report has no store_error"
json mid.json '"\n".join(r.get("observations", []))' | grep "could not save this run" >/dev/null ||
  fail "no observation says the store failed"
errors=$(in_ns curl -s "http://$h/metrics" | awk '/^churnlab_coordinator_run_store_errors_total/ {print $2}')
echo "   /metrics churnlab_coordinator_run_store_errors_total $errors"
[[ ${errors:-0} != 0 ]] || fail "the metric does not count the failed writes"
in_ns "$bin/churnlab" report "$id" --coordinator="$c" --format=json >served.json ||
  fail "the coordinator does not serve the unsaved run"

echo "== 3. space comes back: the run is stored by itself"
free_disk
for _ in $(seq 50); do
  grep -q "stored at last" coordinator.log && break
  sleep 0.1
done
grep -q "stored at last" coordinator.log || fail "the coordinator did not store the run"
in_ns "$bin/churnlab" report "$id" --coordinator="$c" --format=json >stored.json
points=$(json stored.json 'len(r.get("series", []))')
expected=$(json mid.json 'len(r.get("series", []))')
echo "   stored: state $(json stored.json 'r["state"]'), $points of $expected series points," \
  "store_error '$(json stored.json 'r.get("store_error", "")')'"
[[ $(json stored.json 'r["state"]') == completed ]] || fail "the stored run is not completed"
[[ -z $(json stored.json 'r.get("store_error", "")') ]] || fail "the stored report keeps the error"
((points == expected)) || fail "$points series points stored, the run had $expected"
echo "store_test: passed"
