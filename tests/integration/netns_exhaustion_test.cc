// The four-tuple limit, reproduced in network namespaces of our own: with 1,000 ephemeral ports
// and no TIME_WAIT reuse, one source IP runs out of ports at 100 conn/s after about ten seconds;
// four source IPs carry the same load without a single failure. Bind mode engine fills 98% of
// such a range without a failure, and never takes a reserved port or one bind() holds; where
// the connections have TCP timestamps it takes its own TIME_WAITs over and carries ten times
// the range, tcp_tw_reuse=0 and all (the kernel's TWRecycled agrees); without, it waits them out.
#include <set>
#include <thread>

#include "agent/engine.h"
#include "agent/port_plan.h"
#include "gtest/gtest.h"
#include "host/tcp_socket_table.h"
#include "tests/support/network_namespace.h"
#include "tests/support/target_process.h"

namespace churnlab {
namespace {

using testing::NetworkNamespace;
using testing::StartTarget;
using testing::TargetProcess;

struct Outcome {
  absl::Status status;
  EngineSnapshot snapshot;
};

// Runs 100 conn/s for 15 s from `sources` in a fresh namespace with a 1,000-port range.
Outcome RunInShrunkenNamespace(const std::string& tag, const std::string& sources) {
  Outcome out;
  absl::StatusOr<NetworkNamespace> ns = NetworkNamespace::Create(tag);
  if (!ns.ok()) return {ns.status(), {}};
  out.status = ns->SetSysctl("net.ipv4.ip_local_port_range", "40000 40999");
  if (out.status.ok()) out.status = ns->SetSysctl("net.ipv4.tcp_tw_reuse", "0");
  if (!out.status.ok()) return out;
  absl::StatusOr<TargetProcess> target = StartTarget({"--threads=1"}, ns->ExecPrefix());
  if (!target.ok()) return {target.status(), {}};
  EngineParams params;
  params.targets = {target->address};
  params.source_ips = *ParseIpList(sources);
  params.bind_mode = BindMode::kNoPort;
  params.rate = 100;
  params.duration = absl::Seconds(15);
  params.close_policy = ClosePolicy::kClientFin;
  absl::Status inside = ns->RunInside([&] {
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(params);
    if (!engine.ok()) {
      out.status = engine.status();
      return;
    }
    (*engine)->Start();
    out.snapshot = (*engine)->Wait();
  });
  if (!inside.ok()) out.status = inside;
  target->StopAndReadCounters();
  return out;
}

TEST(NetnsExhaustionTest, OneSourceRunsOutOfPortsFourSourcesDoNot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces (ip netns add)";
  Outcome single;
  Outcome spread;
  // Both namespaces run at once: each has its own port range and TIME_WAIT table.
  std::thread a([&] { single = RunInShrunkenNamespace("single", "127.0.0.1"); });
  std::thread b([&] {
    spread = RunInShrunkenNamespace("spread", "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5");
  });
  a.join();
  b.join();
  ASSERT_TRUE(single.status.ok()) << single.status;
  ASSERT_TRUE(spread.status.ok()) << spread.status;

  OutcomeCounts one = single.snapshot.Total();
  EXPECT_EQ(one.attempted + single.snapshot.late_starts, 1500u);
  EXPECT_EQ(one.attempted, one.succeeded + one.failed());
  // ~1,000 ports, each held 60 s in TIME_WAIT: after ~10 s every connect fails.
  EXPECT_LE(one.succeeded, 1000u);
  EXPECT_GE(one.failures_of(Phase::kConnect, EADDRNOTAVAIL), 400u);
  EXPECT_EQ(one.failures_of(Phase::kConnect, EADDRNOTAVAIL), one.failed());

  OutcomeCounts four = spread.snapshot.Total();
  EXPECT_EQ(four.attempted + spread.snapshot.late_starts, 1500u);
  // Starts a busy machine let pass their time are late, not made (three quarters made at least).
  EXPECT_GE(four.attempted, 1125u);
  EXPECT_EQ(four.succeeded, four.attempted);
  EXPECT_EQ(four.failed(), 0u);
  ASSERT_EQ(spread.snapshot.sources.size(), 4u);
  for (const SourceSnapshot& source : spread.snapshot.sources) {
    EXPECT_NEAR(source.counts.succeeded, four.succeeded / 4.0, 8) << SourceName(source.source);
  }
}

// The host's plan read inside the namespace (its range, its reserved port, the target's
// listening port), then 980 connections held in TIME_WAIT from one source: every one made, each
// on a port of its own, none on a port the plan leaves out (ss's table is the witness).
TEST(NetnsExhaustionTest, BindModeEngineFillsTheRangeAndSkipsWhatTheKernelWould) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces (ip netns add)";
  absl::StatusOr<NetworkNamespace> ns = NetworkNamespace::Create("engine-ports");
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->SetSysctl("net.ipv4.ip_local_port_range", "40000 40999").ok());
  ASSERT_TRUE(ns->SetSysctl("net.ipv4.ip_local_reserved_ports", "40500").ok());
  ASSERT_TRUE(ns->SetSysctl("net.ipv4.tcp_tw_reuse", "0").ok());
  // Port 0: the target's listener takes a port of the range, as another program's would.
  absl::StatusOr<TargetProcess> target = StartTarget({"--threads=1"}, ns->ExecPrefix());
  ASSERT_TRUE(target.ok()) << target.status();
  const int listening = target->address.port();
  EngineParams params;
  params.targets = {target->address};
  params.source_ips = {*SocketAddress::ParseIp("127.0.0.1")};
  params.bind_mode = BindMode::kEngine;
  params.concurrency = 50;
  params.max_connections = 980;
  params.duration = absl::Seconds(20);
  EngineSnapshot snapshot;
  std::multiset<int> ports;
  absl::Status inside = ns->RunInside([&] {
    absl::StatusOr<PortPlan> plan = HostPortPlan(params, TakeRangeUse(40000, 40999));
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->low, 40000);
    EXPECT_EQ(plan->high, 40999);
    EXPECT_EQ(plan->reuse_after, absl::Seconds(61));  // tcp_tw_reuse=0: the whole TIME_WAIT
    ASSERT_NE(plan->excluded, nullptr);
    EXPECT_TRUE(plan->excluded->test(40500));
    EXPECT_TRUE(plan->excluded->test(listening)) << listening;
    params.ports = *plan;
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(params);
    ASSERT_TRUE(engine.ok()) << engine.status();
    (*engine)->Start();
    snapshot = (*engine)->Wait();
    absl::StatusOr<std::vector<TcpSocketInfo>> sockets =
        DumpTcpSocketsToPorts(AF_INET, listening, listening);
    ASSERT_TRUE(sockets.ok()) << sockets.status();
    for (const TcpSocketInfo& s : *sockets) ports.insert(s.local.port());
  });
  ASSERT_TRUE(inside.ok()) << inside;
  target->StopAndReadCounters();
  OutcomeCounts t = snapshot.Total();
  EXPECT_EQ(t.succeeded, 980u);
  EXPECT_EQ(t.failed(), 0u);
  EXPECT_EQ(ports.size(), 980u);
  EXPECT_EQ(std::set<int>(ports.begin(), ports.end()).size(), 980u);
  EXPECT_EQ(ports.count(40500), 0u);
  EXPECT_EQ(ports.count(listening), 0u);
  EXPECT_GE(*ports.begin(), 40000);
  EXPECT_LE(*ports.rbegin(), 40999);
}

// A TCP counter of the namespace; -1 when unreadable.
int64_t CounterIn(const NetworkNamespace& ns, const std::string& name) {
  absl::StatusOr<std::map<std::string, int64_t>> counters = ns.KernelCounters();
  if (!counters.ok() || !counters->contains(name)) return -1;
  return counters->at(name);
}

struct TakeoverOutcome {
  OutcomeCounts totals;
  int64_t recycled = 0;  // TcpExtTWRecycled over the run
  int64_t opens = 0;     // TcpActiveOpens over the run
  uint64_t time_wait = 0;
};

// Bind mode engine at 100/s for 4 s from one source through a 50-port range (each port due again
// every half second; the engine takes a TIME_WAIT over a retransmission timeout, 200 ms, after
// its close), tcp_tw_reuse=0, in a namespace with tcp_timestamps as given.
TakeoverOutcome EngineThroughFiftyPorts(const std::string& timestamps) {
  TakeoverOutcome out;
  absl::StatusOr<NetworkNamespace> ns = NetworkNamespace::Create("engine-takeover");
  EXPECT_TRUE(ns.ok()) << ns.status();
  if (!ns.ok()) return out;
  // The target's listener takes its port from the default range (32768..60999) first.
  absl::StatusOr<TargetProcess> target = StartTarget({"--threads=1"}, ns->ExecPrefix());
  EXPECT_TRUE(target.ok()) << target.status();
  if (!target.ok()) return out;
  const int port = target->address.port();
  EXPECT_TRUE(ns->SetSysctl("net.ipv4.ip_local_port_range", "30000 30049").ok());
  EXPECT_TRUE(ns->SetSysctl("net.ipv4.tcp_tw_reuse", "0").ok());
  EXPECT_TRUE(ns->SetSysctl("net.ipv4.tcp_timestamps", timestamps).ok());
  EngineParams params;
  params.targets = {target->address};
  params.source_ips = {*SocketAddress::ParseIp("127.0.0.1")};
  params.bind_mode = BindMode::kEngine;
  params.rate = 100;
  params.duration = absl::Seconds(4);
  const int64_t recycled = CounterIn(*ns, "TWRecycled");
  const int64_t opens = CounterIn(*ns, "ActiveOpens");
  absl::Status inside = ns->RunInside([&] {
    absl::StatusOr<PortPlan> plan = HostPortPlan(params, TakeRangeUse(30000, 30049));
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->low, 30000);
    EXPECT_EQ(plan->reuse_after, absl::Seconds(61));  // tcp_tw_reuse plays no part
    params.ports = *plan;
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(params);
    ASSERT_TRUE(engine.ok()) << engine.status();
    (*engine)->Start();
    out.totals = (*engine)->Wait().Total();
    absl::StatusOr<std::vector<TcpSocketInfo>> sockets = DumpTcpSocketsToPorts(AF_INET, port, port);
    ASSERT_TRUE(sockets.ok()) << sockets.status();
    // The last closes may wait for the target's FIN a moment longer (FIN_WAIT2).
    for (const TcpSocketInfo& s : *sockets) {
      out.time_wait += s.state == TcpState::kTimeWait || s.state == TcpState::kFinWait2;
    }
  });
  EXPECT_TRUE(inside.ok()) << inside;
  out.recycled = CounterIn(*ns, "TWRecycled") - recycled;
  out.opens = CounterIn(*ns, "ActiveOpens") - opens;
  target->StopAndReadCounters();
  return out;
}

// With timestamps, 400 connections through 50 ports: every one made, and every connect() after
// the first 50 took over a TIME_WAIT of the engine's (the kernel counts it: TWRecycled); at the
// end one TIME_WAIT per port. Without, the 50 ports serve once and the engine, knowing the
// kernel would refuse them for a minute, offers none (phase bind), so connect() is never refused.
TEST(NetnsExhaustionTest, BindModeEngineTakesOverItsTimeWaitsWhereTheConnectionsHadTimestamps) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces (ip netns add)";
  TakeoverOutcome with = EngineThroughFiftyPorts("1");
  // No connection failed: any that did, by phase and code.
  with.totals.ForEachFailure([](Phase phase, int code, uint64_t count) {
    ADD_FAILURE() << count << " failed in phase " << static_cast<int>(phase) << ", code " << code;
  });
  EXPECT_EQ(with.totals.succeeded, with.totals.attempted);
  EXPECT_GE(with.totals.succeeded, 300u);  // the rest skipped late on a busy host, not failed
  EXPECT_EQ(with.opens, static_cast<int64_t>(with.totals.succeeded));
  EXPECT_EQ(with.recycled, with.opens - 50);
  EXPECT_EQ(with.time_wait, 50u);

  TakeoverOutcome without = EngineThroughFiftyPorts("0");
  EXPECT_EQ(without.totals.succeeded, 50u);
  EXPECT_EQ(without.recycled, 0);
  EXPECT_EQ(without.opens, 50);
  EXPECT_EQ(without.totals.failures_of(Phase::kConnect, EADDRNOTAVAIL), 0u);
  EXPECT_EQ(without.totals.failed(), without.totals.failures_of(Phase::kBind, EADDRNOTAVAIL));
  EXPECT_GE(without.totals.failed(), 200u);
  EXPECT_EQ(without.time_wait, 50u);
}

}  // namespace
}  // namespace churnlab
