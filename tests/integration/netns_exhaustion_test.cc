// The four-tuple limit, reproduced in network namespaces of our own: with 1,000 ephemeral ports
// and no TIME_WAIT reuse, one source IP runs out of ports at 100 conn/s after about ten seconds;
// four source IPs carry the same load without a single failure.
#include <thread>

#include "agent/engine.h"
#include "gtest/gtest.h"
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
  EXPECT_GE(four.attempted, 1470u);
  EXPECT_EQ(four.succeeded, four.attempted);
  EXPECT_EQ(four.failed(), 0u);
  ASSERT_EQ(spread.snapshot.sources.size(), 4u);
  for (const SourceSnapshot& source : spread.snapshot.sources) {
    EXPECT_NEAR(source.counts.succeeded, 375, 8) << SourceName(source.source);
  }
}

}  // namespace
}  // namespace churnlab
