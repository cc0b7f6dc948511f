#!/usr/bin/env bash
# Every peer is a stranger, tried with fake peers that speak churnlab's gRPC protocol (Debian's
# python3-grpcio), in a network namespace of the test's own:
#  1. A fake agent against a real churnlab-coordinator (--max-agents=4): hellos outside every
#     limit, one agent too many, a run's telemetry past every bound, a message past the receive
#     limit (fake_agent.py says what each must do; the coordinator's RSS, /metrics and the run's
#     report are the witnesses); sockets that connect to its gRPC port and say nothing are
#     closed (its /proc/PID/fd is the witness).
#  2. A fake coordinator against a real churnlab-agent: shards with bad values, a lease of a
#     billion seconds, a lease from the agent's future, NaN rates, then silence
#     (fake_coordinator.py; the namespace's SYN counter in nftables is the witness).
# Usage: hostile_peers_test.sh BIN_DIR
here=$(realpath "$(dirname "$0")")  # before shell_test.sh enters the scratch directory
source "$here/../support/shell_test.sh" hostile_peers_test "$@"
if [[ $(id -u) -ne 0 ]]; then
  echo "hostile_peers_test: skipped: needs root to create a network namespace"
  exit 77
fi
py=/usr/bin/python3  # Debian's, with python3-grpcio and python3-protobuf
if ! "$py" -c 'import grpc, google.protobuf' 2>/dev/null || ! command -v nft >/dev/null; then
  echo "hostile_peers_test: skipped: needs python3-grpcio, python3-protobuf and nftables" \
    "(scripts/install-deps.sh --test)"
  exit 77
fi
ns="hostile-$$"
trap 'cleanup; ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del "$ns" 2>/dev/null || true' EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }
# in_ns_pid NAME: the pid of this test's process named NAME (its namespace's, no other test's).
in_ns_pid() {
  local p
  for p in $(ip netns pids "$ns"); do
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == "$1" ]] && { echo "$p"; return 0; }
  done
  return 1
}

in_ns "$bin/churnlab-target" --listen=127.0.0.1:0 --address-file=target >target.log 2>&1 &
pids+=($!)
need_file target
target_port=$(cut -d: -f2 target)
in_ns nft add table inet hostile_syn
in_ns nft add chain inet hostile_syn out '{ type filter hook output priority 0; }'
in_ns nft add rule inet hostile_syn out tcp dport "$target_port" 'tcp flags & (syn | ack) == syn' counter

echo "== 1. a fake agent against a real coordinator"
in_ns "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --http-listen=127.0.0.1:0 \
  --address-file=grpc --http-address-file=http --db=runs.db --max-agents=4 \
  >coordinator.log 2>&1 &
pids+=($!)
need_file grpc
need_file http
coordinator=$(in_ns_pid churnlab-coordi) || fail "no churnlab-coordinator process"
in_ns "$py" "$here/fake_agent.py" "$(cat grpc)" "$(cat http)" "$coordinator" "$(cat target)" \
  "$bin" "$work" || fail "the fake agent's checks (above)"
kill -0 "$coordinator" || fail "the coordinator died"

echo "== 1b. connections to the gRPC port that never speak are closed"
# 200 sockets connect and say nothing: each holds one of the coordinator's fds until its 10 s
# handshake deadline closes it (kServerHandshakeTimeoutMs); /proc/PID/fd is the witness.
fds_before=$(ls "/proc/$coordinator/fd" | wc -l)
in_ns "$py" - "$(cat grpc)" "$coordinator" <<'PY' || fail "silent gRPC connections stayed open"
import os, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
pid = sys.argv[2]
socks = [socket.create_connection((host, int(port))) for _ in range(200)]
time.sleep(0.5)
held = len(os.listdir(f"/proc/{pid}/fd"))
print(f"the coordinator holds {held} fds with 200 silent connections")
deadline = time.monotonic() + 20
closed = 0
for s in socks:
    try:
        while True:  # the server's HTTP/2 settings come first, then EOF when it closes
            s.settimeout(max(0.1, deadline - time.monotonic()))
            if s.recv(4096) == b"":
                closed += 1
                break
    except ConnectionResetError:
        closed += 1
    except socket.timeout:
        pass
print(f"{closed} of 200 closed by the coordinator within 20 s")
sys.exit(0 if closed == 200 else 1)
PY
sleep 0.5
fds_after=$(ls "/proc/$coordinator/fd" | wc -l)
echo "the coordinator's fds: $fds_before before, $fds_after after"
((fds_after <= fds_before + 5)) || fail "the coordinator kept the silent connections' fds"

echo "== 1c. the gRPC port holds --grpc-max-connections, exactly, and lets the CLI in again"
# A second coordinator, its gRPC door capped at 40 (--max-agents=4 plus room): 100 silent sockets
# connect; the kernel (ss, the coordinator's established sockets on its port) must show 40,
# /metrics 60 refused; the CLI is shut out while 40 are held and gets in once 10 have closed.
in_ns "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --http-listen=127.0.0.1:0 \
  --address-file=grpc2 --http-address-file=http2 --db=capped.db --max-agents=4 \
  --grpc-max-connections=40 >capped.log 2>&1 &
pids+=($!)
need_file grpc2
need_file http2
in_ns "$py" - "$(cat grpc2)" "$(cat http2)" "$bin" <<'PY' || fail "the gRPC door's cap (above)"
import re, socket, subprocess, sys, time, urllib.request
grpc_at, http_at, bin_dir = sys.argv[1:4]
host, port = grpc_at.rsplit(":", 1)
failures = []
def check(ok, what):
    print(("   ok: " if ok else "   FAILED: ") + what)
    if not ok:
        failures.append(what)
def held_by_kernel():
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if "churnlab-coordi" in line)
def metric(name, door):
    text = urllib.request.urlopen(f"http://{http_at}/metrics", timeout=5).read().decode()
    m = re.search(rf'^{name}{{door="{door}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else -1
def cli_agents():
    return subprocess.run([f"{bin_dir}/churnlab", "agents", f"--coordinator={grpc_at}"],
                          capture_output=True, text=True, timeout=30).returncode
socks = [socket.create_connection((host, int(port))) for _ in range(100)]
for s in socks:
    s.setblocking(False)
closed = set()  # by what each socket read: gRPC's settings (held), or the door's close
def read_all():
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            if s.recv(4096) == b"":
                closed.add(i)
        except BlockingIOError:
            pass
        except ConnectionResetError:
            closed.add(i)
# Read until the door has closed 60 and the coordinator holds 40 (10 s at most: a busy machine
# runs the coordinator late), then once more half a second on, for any closed past the cap.
deadline = time.monotonic() + 10
while True:
    read_all()
    if (len(closed) >= 60 and held_by_kernel() >= 40) or time.monotonic() > deadline:
        break
    time.sleep(0.1)
time.sleep(0.5)
read_all()
held_here = [s for i, s in enumerate(socks) if i not in closed]
refused = len(closed)
held = held_by_kernel()
check(held == 40, f"the coordinator holds {held} established connections on its port (cap 40)")
check(refused == 60, f"{refused} of 100 closed at once by the door")
check(metric("churnlab_coordinator_connections_refused_total", "grpc") == 60,
      "churnlab_coordinator_connections_refused_total{door=\"grpc\"} is 60")
check(cli_agents() != 0, "the CLI is refused while 40 are held")
for s in held_here[:10]:
    s.close()
time.sleep(0.5)
check(cli_agents() == 0, "the CLI gets in once 10 held connections closed")
for s in socks:
    s.close()
sys.exit(1 if failures else 0)
PY

echo "== 2. a fake coordinator against a real agent"
in_ns "$py" "$here/fake_coordinator.py" fake "$(cat target)" >fake.log 2>&1 &
fake=$!
pids+=($!)
need_file fake
in_ns "$bin/churnlab-agent" --coordinator="$(cat fake)" --name=a1 --source-ips=127.0.0.2 \
  >agent.log 2>&1 &
pids+=($!)
code=0
wait "$fake" || code=$?
cat fake.log
((code == 0)) || fail "the fake coordinator's checks (above)"
for rate in nan inf -1; do
  grep -q "refused a rate change to $rate conn/s" agent.log ||
    fail "the agent did not say it refused a rate change to $rate"
done
in_ns_pid churnlab-agent >/dev/null || fail "the agent died"
echo "hostile_peers_test: passed"
