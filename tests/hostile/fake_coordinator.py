"""A hostile coordinator against a real churnlab-agent, both in the test's network namespace
(hostile_peers_test.sh): shards with every class of bad value, which the agent must refuse,
naming the value, with no SYN sent; then a good shard whose pings it answers with a lease of a
billion seconds, a lease from the agent's future and NaN and infinite rate changes, before it
falls silent: the agent must cap the lease to its own dead-man limit and send no SYN from that
limit plus a second after the last lease on (nftables counter, TCPSynRetrans taken off).

Usage: fake_coordinator.py ADDRESS_FILE TARGET
"""
import math
import queue
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc

from peers import Checks, load_modules

agent_pb2, agent_pb2_grpc, telemetry_pb2, spec_pb2 = load_modules()
address_file, target = sys.argv[1:3]
checks = Checks("fake_coordinator")
to_agent = queue.Queue()
from_agent = queue.Queue()
attached = threading.Event()


class Gateway(agent_pb2_grpc.AgentGatewayServicer):
    def Attach(self, request_iterator, context):
        def read():
            try:
                for message in request_iterator:
                    from_agent.put(message)
            except grpc.RpcError as e:  # the stream's end when the server stops: nothing to read
                print(f"   (the agent's stream ended: {e!r})", flush=True)
        threading.Thread(target=read, daemon=True).start()
        attached.set()
        while context.is_active():
            try:
                yield to_agent.get(timeout=0.2)
            except queue.Empty:
                pass


def syns():
    """SYNs the namespace has sent toward the target's port that opened a connection."""
    out = subprocess.run(["nft", "list", "chain", "inet", "hostile_syn", "out"],
                         capture_output=True, text=True, check=True).stdout
    words = out.split()
    sent = int(words[words.index("packets") + 1])
    lines = open("/proc/net/netstat").read().splitlines()
    names, values = lines[0].split(), lines[1].split()
    return sent - int(values[names.index("TCPSynRetrans")])


def next_of(field, run_id=None, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            m = from_agent.get(timeout=max(0.01, end - time.monotonic()))
        except queue.Empty:
            return None
        body = getattr(m, m.WhichOneof("body"))
        if m.WhichOneof("body") == field and (run_id is None or body.run_id == run_id):
            return body
    return None


def shard(run_id, **changes):
    s = agent_pb2.Shard(run_id=run_id, rate=50, max_in_flight=50)
    s.spec.targets.append(target)
    s.spec.duration.seconds = 3
    s.spec.connect_timeout.seconds = 1
    s.spec.io_timeout.seconds = 1
    s.source_ips.append("127.0.0.2")
    s.spec.bind_mode = spec_pb2.BIND_MODE_NO_PORT
    s.spec.protocol = spec_pb2.PROTOCOL_COUNTER
    s.spec.close_policy = spec_pb2.CLOSE_POLICY_CLIENT_FIN
    s.spec.requests_per_connection = 1
    for key, value in changes.items():
        if key == "start_after_s":
            s.start_after.seconds = value
        elif key == "duration_s":
            s.spec.duration.seconds = value
        elif key == "connect_timeout_s":
            s.spec.connect_timeout.seconds = value
        elif key == "targets":
            del s.spec.targets[:]
            s.spec.targets.extend(value)
        elif key == "source_ips":
            del s.source_ips[:]
            s.source_ips.extend(value)
        else:
            setattr(s, key, value)
    return agent_pb2.CoordinatorMessage(assign=s)


server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
agent_pb2_grpc.add_AgentGatewayServicer_to_server(Gateway(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
with open(address_file + ".tmp", "w") as f:
    f.write(f"127.0.0.1:{port}")
import os  # noqa: E402
os.rename(address_file + ".tmp", address_file)
checks.check(attached.wait(30), "the agent attached")
checks.check(next_of("hello") is not None, "its hello came")
welcome = agent_pb2.CoordinatorMessage()
welcome.welcome.telemetry_interval.seconds = -1
to_agent.put(welcome)

print("== shards with bad values are refused, naming the value, and send nothing")
bad = {
    "a NaN rate": (dict(rate=math.nan), "rate"),
    "an infinite rate": (dict(rate=math.inf), "rate"),
    "a rate of 1e300": (dict(rate=1e300), "rate"),
    "a duration of 10^12 s": (dict(duration_s=10**12), "duration"),
    "a connect timeout of 10^6 s": (dict(connect_timeout_s=10**6), "timeout"),
    "a target outside the allow-list": (dict(targets=["10.1.2.3:80"]), "10.1.2.3"),
    "a start 10^9 s ahead": (dict(start_after_s=10**9), "start_after"),
    "a max_in_flight of -5": (dict(max_in_flight=-5), "max_in_flight: is negative"),
    "a max_in_flight of 2^62": (dict(max_in_flight=2**62), "max_in_flight: 4611686018427387904"),
    "a source IP the agent does not offer": (dict(source_ips=["127.0.0.9"]), "127.0.0.9"),
}
before = syns()
for i, (what, (changes, word)) in enumerate(bad.items()):
    run_id = f"r-bad-{i}"
    to_agent.put(shard(run_id, **changes))
    refusal = next_of("refusal", run_id)
    reason = refusal.reason if refusal else "(no refusal)"
    checks.check(refusal is not None and word in reason, f"{what}: {reason[:100]!r}")
time.sleep(1)
checks.check(syns() == before, f"SYNs while refusing: +{syns() - before}")

print("== a good shard: a billion-second lease, a lease from the future, NaN rates, silence")
run_id = "r-good"
to_agent.put(shard(run_id, duration_s=20))
# Pings answered with leases of a billion seconds for 2 s, with rate changes no one can run.
answer_until = time.monotonic() + 2
last_lease = None
adjusted = False
while time.monotonic() < answer_until:
    ping = next_of("ping", timeout=0.5)
    if ping is None:
        continue
    lease = agent_pb2.CoordinatorMessage()
    lease.lease.run_id = run_id
    lease.lease.agent_clock_nanos = ping.agent_clock_nanos
    lease.lease.duration.seconds = 10**9
    to_agent.put(lease)
    last_lease = time.monotonic()
    if not adjusted:
        for rate in (math.nan, math.inf, -1.0):
            to_agent.put(agent_pb2.CoordinatorMessage(adjust=agent_pb2.Adjust(run_id=run_id,
                                                                              rate=rate)))
        adjusted = True
loading = syns() - before
checks.check(last_lease is not None and loading > 0,
             f"the agent loaded under the leases ({loading} SYNs)")
# Silent from here, but for one lease from the agent's future, which must not count.
future = agent_pb2.CoordinatorMessage()
future.lease.run_id = run_id
future.lease.agent_clock_nanos = time.clock_gettime_ns(time.CLOCK_BOOTTIME) + 10**12
future.lease.duration.seconds = 10**9
to_agent.put(future)
if last_lease is not None:
    time.sleep(max(0, last_lease + 4 - time.monotonic()))  # the dead-man limit (3 s), and 1 s
    a = syns()
    time.sleep(3)
    b = syns()
    checks.check(b == a, f"SYNs 4 to 7 s after the last lease: +{b - a}")
server.stop(0)
checks.finish()
