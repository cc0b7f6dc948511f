"""A hostile agent against a real churnlab-coordinator (started by hostile_peers_test.sh with
--max-agents=4): hellos outside every limit, one agent too many, and a run's telemetry with
counts past 2^48, 10,000 sources, TCP states and failure codes no kernel has, a negative census
age and a billion engine processes. The coordinator must refuse or clamp each where it enters,
count it, stay up, keep its memory, and write a report and /metrics that hold nothing of it.

Usage: fake_agent.py GRPC_ADDRESS HTTP_ADDRESS COORDINATOR_PID TARGET BIN_DIR WORK_DIR
"""
import json
import re
import subprocess
import sys
import time
import urllib.request

import grpc

from peers import Checks, Link, load_modules, metric, rss_kib

agent_pb2, agent_pb2_grpc, telemetry_pb2, spec_pb2 = load_modules()
grpc_address, http, pid, target, bin_dir, work = sys.argv[1:7]
stub = agent_pb2_grpc.AgentGatewayStub(grpc.insecure_channel(
    grpc_address, options=[("grpc.max_send_message_length", 64 << 20)]))
checks = Checks("fake_agent")
U64_MAX = 2**64 - 1
# Linux's TCP states as `ss` names them: the only keys a report's tcp_states may have.
KERNEL_STATES = {"ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
                 "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}


def hello(name, **fields):
    h = agent_pb2.Hello(name=name, host="fake", version="hostile", source_ips=["127.0.0.2"],
                        allow_targets=["127.0.0.0/8"], kernel_id="fake-kernel",
                        port_range=agent_pb2.PortRange(low=40000, high=40999))
    for key, value in fields.items():
        field = getattr(h, key)
        if hasattr(field, "extend"):
            del field[:]
            field.extend(value)
        elif hasattr(field, "update"):
            field.update(value)
        elif hasattr(field, "CopyFrom"):
            field.CopyFrom(value)
        else:
            setattr(h, key, value)
    return agent_pb2.AgentMessage(hello=h)


def attach(message):
    link = Link(grpc, stub)
    link.send(message)
    return link


print("== hellos outside the limits are refused, naming the field")
bad_hellos = {
    "a name with an escape sequence": (hello("evil\x1b[2J"), "hello.name"),
    "a port range past 65535": (
        hello("evil", port_range=agent_pb2.PortRange(low=70000, high=80000)), "hello.port_range"),
    "100 sysctls": (hello("evil", sysctls={f"k{i}": "v" for i in range(100)}), "hello.sysctls"),
    "5,000 source IPs": (
        hello("evil", source_ips=[f"10.{i // 250}.{i % 250}.1" for i in range(5000)]),
        "hello.source_ips"),
    "a source IP that is none": (hello("evil", source_ips=["not-an-ip"]), "hello.source_ips"),
}
for what, (message, field) in bad_hellos.items():
    link = attach(message)
    code, details = link.status() or ("OPEN", "")
    checks.check(code == "INVALID_ARGUMENT" and field in details,
                 f"{what}: {code} {details[:90]!r}")
    link.close()

print("== one agent past --max-agents=4 is refused and counted")
refused_before = metric(http, "churnlab_coordinator_attaches_refused_total")
held = [attach(hello(f"cap{i}", source_ips=[f"127.0.3.{i + 1}"])) for i in range(4)]
welcomed = sum(1 for link in held if link.next_of("welcome") is not None)
extra = attach(hello("cap4", source_ips=["127.0.3.9"]))
code, details = extra.status() or ("OPEN", "")
refused_after = metric(http, "churnlab_coordinator_attaches_refused_total")
checks.check(welcomed == 4, f"4 agents attached ({welcomed} welcomed)")
checks.check(code == "RESOURCE_EXHAUSTED" and "--max-agents" in details,
             f"the fifth: {code} {details[:90]!r}")
checks.check(refused_before is not None and refused_after == refused_before + 1,
             f"churnlab_coordinator_attaches_refused_total {refused_before} -> {refused_after}")
for link in held:
    link.close()
for link in held:
    link.status()
time.sleep(0.5)

print("== a run's telemetry past every bound is clamped, counted and kept out of the report")
rss_before = rss_kib(pid)
refused_before = metric(http, "churnlab_coordinator_telemetry_entries_refused_total")
evil = attach(hello("evil"))
checks.check(evil.next_of("welcome") is not None, "evil attached")
cli = subprocess.Popen(
    [f"{bin_dir}/churnlab", "run", f"--coordinator={grpc_address}", f"--target={target}",
     "--rate=10", "--duration=3s", f"--report={work}/evil.json"],
    stdout=open(f"{work}/evil-run.log", "w"), stderr=subprocess.STDOUT)
shard = evil.next_of("assign")
checks.check(shard is not None, "the run assigned its shard to the fake agent")


def poison(elapsed_s, final):
    t = telemetry_pb2.ShardTelemetry(run_id=shard.run_id, final=final, in_flight=U64_MAX,
                                     engine_processes=10**9, engine_processes_lost=2 * 10**9,
                                     port_range_size=1000)
    t.elapsed.seconds = elapsed_s
    t.census_age.seconds = -5
    for i in range(10000):
        s = t.sources.add(ip=f"127.0.{i // 250}.{i % 250 + 1}", attempted=U64_MAX,
                          succeeded=U64_MAX, requests=U64_MAX, ports_in_use_at_start=10**9)
        s.failures.add(code="\x1b[31mEVIL" if i % 2 else "EADDRNOTAVAIL", count=2**63)
        # State names as the old map carried them (field 8: {key "BOGUS", value 5}): unknown
        # to this build's TcpStateCounts, so they must vanish where telemetry enters.
        s.MergeFromString(b"\x42\x09\x0a\x05BOGUS\x10\x05")
        s.tcp_states.established = U64_MAX
    t.host.MergeFromString(b"\x32\x0f\x0a\x0bNOT_A_STATE\x10\x07")
    return agent_pb2.AgentMessage(telemetry=t)


if shard is not None:
    for second in range(1, 5):
        evil.send(poison(second, final=second == 4))
        time.sleep(0.5 if second < 4 else 0)
try:
    code = cli.wait(timeout=60)
except subprocess.TimeoutExpired:
    cli.kill()
    code = "timeout"
rss_after = rss_kib(pid)
refused_after = metric(http, "churnlab_coordinator_telemetry_entries_refused_total")
checks.check(code in (0, 1), f"churnlab run ended by itself (exit {code})")
try:
    report = json.load(open(f"{work}/evil.json"))
except (OSError, ValueError) as e:
    report = None
    checks.check(False, f"a report that reads back: {e}")
if report is not None:
    agent = report["agents"][0]
    sources = agent.get("sources", [])
    checks.check(len(sources) <= 4096, f"{len(sources)} sources kept (at most 4096 of 10,000)")
    biggest = max(int(s.get("attempted", 0)) for s in sources) if sources else 0
    checks.check(0 < biggest <= 2**48, f"a source's attempted {biggest} (clamped to 2^48)")
    total = int(report["totals"]["attempted"])
    checks.check(total <= 4096 * 2**48, f"the total {total} did not wrap")
    codes = list(report.get("errors", {}))
    checks.check(all(re.fullmatch(r"[A-Z0-9_]{1,32}", c) for c in codes),
                 f"error codes {codes}")
    # The sources' states are in the series (the report's sources carry counts only).
    points = [s for p in report.get("series", []) for a in p.get("agents", [])
              for s in a.get("sources", [])]
    states = set(agent.get("host_tcp_states", {}))
    for s in points:
        states |= set(s.get("tcp_states", {}))
    checks.check(points and states <= KERNEL_STATES, f"TCP states kept: {sorted(states)}")
    established = max((int(s.get("tcp_states", {}).get("ESTABLISHED", 0)) for s in points),
                      default=0)
    checks.check(0 < established <= 2**48,
                 f"a source's ESTABLISHED {established} (clamped to 2^48)")
    processes = int(agent.get("engine_processes", 0))
    lost = int(agent.get("engine_processes_lost", 0))
    checks.check(processes <= 4096 and lost <= processes,
                 f"engine processes {processes}, lost {lost}")
checks.check(refused_after - refused_before >= 10000 - 4096,
             f"churnlab_coordinator_telemetry_entries_refused_total +{refused_after - refused_before:.0f}")
checks.check(rss_after - rss_before < 200 * 1024,
             f"the coordinator's RSS {rss_before // 1024} -> {rss_after // 1024} MiB")
evil.close()

print("== a message past the coordinator's receive limit ends only its own stream")
big = attach(hello("big", source_ips=["127.0.3.20"]))
big.next_of("welcome")
huge = telemetry_pb2.ShardTelemetry(run_id="r-none")
for i in range(60000):
    huge.sources.add(ip="x" * 80)
big.send(agent_pb2.AgentMessage(telemetry=huge))
code, details = big.status() or ("OPEN", "")
checks.check(code == "RESOURCE_EXHAUSTED", f"a {huge.ByteSize() >> 20} MiB message: {code}")
with urllib.request.urlopen(f"http://{http}/metrics", timeout=10) as r:
    text = r.read().decode()
checks.check("\x1b" not in text and "EVIL" not in text, "/metrics holds no escape or bad code")
agents = subprocess.run([f"{bin_dir}/churnlab", "agents", f"--coordinator={grpc_address}"],
                        capture_output=True, text=True, timeout=30)
checks.check(agents.returncode == 0, f"the coordinator still answers (churnlab agents: exit "
             f"{agents.returncode})")
checks.finish()
