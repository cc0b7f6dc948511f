#include "analysis/preflight.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "analysis/tuple_budget.h"
#include "gtest/gtest.h"
#include "tests/analysis/facts.h"

namespace churnlab::analysis {
namespace {

using testing::Fleet;
using testing::Spec;

TEST(PreflightTest, WarnsOfFdLimitsAndPortsThatWillRunOut) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 200, {{"net.ipv4.tcp_tw_reuse", "0"}}, 5000).set_fd_limit(1024);
  std::vector<std::string> warnings = PreflightWarnings(Spec({"10.0.0.1:80"}, 200), fleet.facts());
  ASSERT_EQ(warnings.size(), 2u);
  // Past one process's fd limit the agent starts engine processes: said, not warned as EMFILE.
  EXPECT_NE(warnings[0].find("past its fd limit 1024: it runs them in 6 engine processes"),
            std::string::npos)
      << warnings[0];
  EXPECT_NE(warnings[1].find("run out after ~5s"), std::string::npos) << warnings[1];
  EXPECT_NE(warnings[1].find("expect EADDRNOTAVAIL"), std::string::npos) << warnings[1];

  // A staged rate is split over engine processes like any other.
  v1::RunSpec staged = Spec({"10.0.0.1:80"}, 200);
  staged.add_stages()->set_rate(200);
  std::vector<std::string> split = PreflightWarnings(staged, fleet.facts());
  ASSERT_FALSE(split.empty());
  EXPECT_NE(split[0].find("it runs them in 6 engine processes"), std::string::npos) << split[0];

  Fleet calm;
  calm.Add("a1", {"10.0.1.1"}, 10, {{"net.ipv4.tcp_tw_reuse", "0"}}, 100).set_fd_limit(1024);
  EXPECT_TRUE(PreflightWarnings(Spec({"10.0.0.1:80"}, 10), calm.facts()).empty());
}

// Ports held on the agent's host before the run (its idle census in the hello): a tenth of the
// range or more is said before any traffic; less is not.
TEST(PreflightTest, SaysWhenTheHostAlreadyHoldsMuchOfTheRange) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 10, {{"net.ipv4.tcp_tw_reuse", "0"}}, 10);
  v1::PortsAtStart held;
  held.set_in_use(990);
  held.set_listening(2);
  fleet.last().range_at_start = held;
  std::vector<std::string> warnings = PreflightWarnings(Spec({"10.0.0.1:80"}, 10), fleet.facts());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("990 of its 1000 ports were held by sockets on its host"),
            std::string::npos)
      << warnings[0];
  EXPECT_NE(warnings[0].find("2 by listeners"), std::string::npos) << warnings[0];
  held.set_in_use(99);
  fleet.last().range_at_start = held;
  EXPECT_TRUE(PreflightWarnings(Spec({"10.0.0.1:80"}, 10), fleet.facts()).empty());

  // Where the kernel said which were bind()'s, only those count: connect()'s block only their
  // own four-tuples.
  held.set_in_use(990);
  held.set_bind_taken_known(true);
  held.set_bind_taken(500);
  fleet.last().range_at_start = held;
  warnings = PreflightWarnings(Spec({"10.0.0.1:80"}, 10), fleet.facts());
  ASSERT_EQ(warnings.size(), 2u) << absl::StrJoin(warnings, "\n");
  EXPECT_NE(warnings[0].find("bind() had taken 500 of its 1000 ports on its host"),
            std::string::npos)
      << warnings[0];
  EXPECT_NE(warnings[0].find("its budget counts the 500 left"), std::string::npos) << warnings[0];
  // and the budget's own warning counts them out
  EXPECT_NE(warnings[1].find("its 500 ports x 1 destination(s) would run out"), std::string::npos)
      << warnings[1];
  held.set_bind_taken(99);
  fleet.last().range_at_start = held;
  EXPECT_TRUE(PreflightWarnings(Spec({"10.0.0.1:80"}, 10), fleet.facts()).empty());
}

// The preflight counts engine processes by the agent's own rule (common/fd_limit.h): at an fd
// limit of 100 each holds 50, so 120 at once take 3 (it used to say 4, at 36 each).
TEST(PreflightTest, CountsEngineProcessesAsTheAgentStartsThem) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 10, {{"net.ipv4.tcp_tw_reuse", "0"}}, 120).set_fd_limit(100);
  std::vector<std::string> warnings = PreflightWarnings(Spec({"10.0.0.1:80"}, 10), fleet.facts());
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings[0].find("it runs them in 3 engine processes"), std::string::npos)
      << warnings[0];
}

// What the connections held at once need beside ports: files (fs.file-max) and memory.
TEST(PreflightTest, WarnsWhenTheHostCannotHoldTheConnections) {
  Fleet fleet;
  v1::Hello& a1 = fleet.Add("a1", {"10.0.1.1", "10.0.1.2"}, 0);
  a1.mutable_port_range()->set_low(32768);  // 2 x 28,232 four-tuples toward one destination
  a1.mutable_port_range()->set_high(60999);
  a1.set_mem_available_bytes(uint64_t{1} << 30);  // 1 GiB: about 195,000 connections
  v1::RunSpec spec = Spec({"10.0.0.1:80"}, 0);
  spec.set_rate(0);
  spec.set_concurrency(50000);
  std::vector<ShardFacts> shards = fleet.facts();
  shards[0].in_flight = 50000;
  EXPECT_TRUE(PreflightWarnings(spec, shards).empty());
  shards[0].in_flight = 400000;
  std::vector<std::string> warnings = PreflightWarnings(spec, shards);
  ASSERT_EQ(warnings.size(), 2u);  // 56,464 four-tuples, and the memory
  EXPECT_NE(warnings[1].find("its share of 400000 connections at once takes about 2098 MiB"),
            std::string::npos)
      << warnings[1];
  EXPECT_NE(warnings[1].find("the 1024 MiB its host had available"), std::string::npos)
      << warnings[1];
  (*a1.mutable_sysctls())["fs.file-max"] = "100000";
  warnings = PreflightWarnings(spec, shards);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[1].find("past its host's fs.file-max of 100000"), std::string::npos)
      << warnings[1];
  // The open model holds its rate times each connection's life, not its cap on connections in
  // flight: 1,000/s held 60 s is about 61,000, which the file limit allows.
  spec.set_rate(1000);
  spec.mutable_hold()->set_seconds(60);
  shards[0].rate = 1000;
  for (const std::string& w : PreflightWarnings(spec, shards)) {
    EXPECT_EQ(w.find("fs.file-max"), std::string::npos) << w;
  }
  spec.mutable_hold()->set_seconds(600);  // about 601,000
  bool warned = false;
  for (const std::string& w : PreflightWarnings(spec, shards)) {
    warned = warned || w.find(
                           "its share of 400000 connections at once is past its host's "
                           "fs.file-max") != std::string::npos;
  }
  EXPECT_TRUE(warned) << "the cap of 400,000 in flight binds first";
}

// fs.file-max and memory are the kernel's: two agents in two namespaces of one host share them,
// and a loopback target's ends are on that kernel too.
TEST(PreflightTest, AgentsOnOneKernelShareItsFilesAndMemory) {
  Fleet fleet;
  std::vector<v1::Hello*> hellos;
  for (const char* name : {"a1", "a2"}) {
    v1::Hello& hello =
        *hellos.emplace_back(&fleet.Add(name, {name[1] == '1' ? "10.0.1.1" : "10.0.2.1"}, 0));
    hello.set_kernel_id(absl::StrCat("boot-1/net:[", name[1] == '1' ? 1 : 2, "]"));
    hello.mutable_port_range()->set_low(1024);
    hello.mutable_port_range()->set_high(65535);
    (*hello.mutable_sysctls())["fs.file-max"] = "150000";
    hello.set_mem_available_bytes(uint64_t{4} << 30);
  }
  v1::RunSpec spec = Spec({"10.0.0.1:80"}, 0);
  spec.set_rate(0);
  spec.set_concurrency(200000);
  std::vector<ShardFacts> shards = fleet.facts();
  shards[0].in_flight = shards[1].in_flight = 100000;  // each under the limit, not together
  auto said = [&](const std::string& text) {
    for (const std::string& w : PreflightWarnings(spec, shards)) {
      if (w.find(text) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(
      said("agents a1, a2 (one kernel): their 200000 connections at once in all are past "
           "their host's fs.file-max of 150000"));
  // Two kernels: each has its own.
  hellos[1]->set_kernel_id("boot-2/net:[2]");
  EXPECT_FALSE(said("fs.file-max"));
  // A loopback target doubles what one agent's connections cost its kernel.
  *spec.mutable_targets(0) = "127.0.0.1:80";
  shards.pop_back();
  shards[0].in_flight = 80000;
  EXPECT_TRUE(
      said("agent a1: its share of 80000 connections at once (160000 sockets: the target "
           "is on this host too) is past its host's fs.file-max of 150000"));
  shards[0].in_flight = 70000;
  EXPECT_FALSE(said("fs.file-max"));
}

TEST(PreflightTest, APortRangeThatOutlastsTheRunIsNoPromiseOfEaddrnotavail) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 100);
  std::vector<std::string> warnings =
      PreflightWarnings(Spec({"10.0.0.1:80"}, 100, v1::CLOSE_POLICY_CLIENT_FIN,
                             v1::BIND_MODE_NO_PORT, /*duration_s=*/5),
                        fleet.facts());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("the 5s run ends first"), std::string::npos) << warnings[0];
  EXPECT_EQ(warnings[0].find("EADDRNOTAVAIL"), std::string::npos) << warnings[0];
}

// The finding: preflight used to read tcp_tw_reuse=2 as reuse on for any target, while
// the report (correctly) applied it to loopback only. Both now come from one budget.
TEST(PreflightTest, AgreesWithTheReportForTwReuseTwoAndNonLoopbackTargets) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 200,
            {{"net.ipv4.tcp_tw_reuse", "2"}, {"net.ipv4.tcp_timestamps", "1"}});
  v1::RunSpec spec = Spec({"10.0.0.1:80"}, 200);
  std::vector<std::string> warnings = PreflightWarnings(spec, fleet.facts());
  v1::TupleBudget budget = ComputeTupleBudget(spec, fleet.facts());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("expect EADDRNOTAVAIL"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("after ~5s"), std::string::npos) << warnings[0];
  EXPECT_EQ(budget.sources(0).limit(), v1::PORT_LIMIT_TIME_WAIT);
  EXPECT_DOUBLE_EQ(budget.sources(0).exhaustion_after_s(), 5);
  EXPECT_NE(budget.summary().find("ports would run out after about 5 s"), std::string::npos)
      << budget.summary();

  // Toward loopback the same agent reuses tuples after 1 s: 1,000/s, so neither warns nor
  // predicts exhaustion at 200/s.
  v1::RunSpec loopback = Spec({"127.0.0.1:80"}, 200);
  EXPECT_TRUE(PreflightWarnings(loopback, fleet.facts()).empty());
  v1::TupleBudget lifted = ComputeTupleBudget(loopback, fleet.facts());
  EXPECT_EQ(lifted.sources(0).exhaustion_after_s(), 0);
  EXPECT_EQ(lifted.summary().find("run out"), std::string::npos) << lifted.summary();
}

TEST(PreflightTest, TwBucketsBelowThePortsWarnOfEarlyDestructionNotExhaustion) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 200,
            {{"net.ipv4.tcp_tw_reuse", "0"}, {"net.ipv4.tcp_max_tw_buckets", "500"}});
  std::vector<std::string> warnings = PreflightWarnings(Spec({"10.0.0.1:80"}, 200), fleet.facts());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("TCPTimeWaitOverflow"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("expect no EADDRNOTAVAIL"), std::string::npos) << warnings[0];
  EXPECT_EQ(warnings[0].find("run out after"), std::string::npos) << warnings[0];
}

TEST(PreflightTest, OneWarningPerAgentHowEverManySources) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1", "10.0.1.2", "10.0.1.3"}, 600);
  std::vector<std::string> warnings = PreflightWarnings(Spec({"10.0.0.1:80"}, 600), fleet.facts());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("at 200 conn/s per source IP"), std::string::npos) << warnings[0];
}

// 1,500 in flight over 1,000 ports toward one destination: 500 fail at once, whatever TIME_WAIT.
TEST(PreflightTest, WarnsWhenConcurrencyExceedsTheFourTuples) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, /*rate=*/0, {{"net.ipv4.tcp_tw_reuse", "0"}}, /*in_flight=*/1500);
  v1::RunSpec spec = Spec({"10.0.0.1:80"}, 0);
  spec.set_concurrency(1500);
  std::vector<std::string> warnings = PreflightWarnings(spec, fleet.facts());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("concurrency 1500 needs a four-tuple per connection"),
            std::string::npos)
      << warnings[0];
  EXPECT_NE(warnings[0].find("give only 1000"), std::string::npos) << warnings[0];
  spec.add_targets("10.0.0.1:81");  // two destinations: 2,000 tuples
  EXPECT_TRUE(PreflightWarnings(spec, fleet.facts()).empty());
}

// What a host can hold at once: the least of its four-tuples and its memory, lowered by
// fs.file-max; fs.file-max alone (often 2^63 - 1) says nothing, so an agent giving only that
// has no capacity to weigh.
TEST(HoldCapacityTest, TheLeastOfTuplesAndMemoryLoweredByFileMax) {
  v1::RunSpec spec;
  spec.add_targets("10.0.0.1:80");
  spec.add_targets("10.0.0.2:80");
  v1::Hello hello;
  hello.mutable_port_range()->set_low(30000);
  hello.mutable_port_range()->set_high(39999);  // 10,000 ports
  std::vector<SocketAddress> ips = churnlab::testing::Ips({"10.0.1.1", "10.0.1.2"});
  ShardFacts shard{&hello, ips};
  EXPECT_EQ(HoldCapacity(spec, shard), 40'000u);  // 2 sources x 10,000 ports x 2 targets
  hello.set_mem_available_bytes(110'000'000);     // ~5.5 KB each: 20,000
  EXPECT_EQ(HoldCapacity(spec, shard), 20'000u);
  (*hello.mutable_sysctls())["fs.file-max"] = "15000";
  EXPECT_EQ(HoldCapacity(spec, shard), 15'000u);

  // Two agents on the kernel share its fs.file-max; a loopback target's end is on it too.
  EXPECT_EQ(HoldCapacity(spec, shard, 2), 7'500u);
  v1::RunSpec loopback;
  loopback.add_targets("127.0.0.1:80");
  EXPECT_EQ(HoldCapacity(loopback, shard), 7'500u);
  EXPECT_EQ(HoldCapacity(loopback, shard, 2), 3'750u);

  v1::Hello says_little;
  (*says_little.mutable_sysctls())["fs.file-max"] = "9223372036854775807";
  EXPECT_EQ(HoldCapacity(spec, ShardFacts{&says_little, ips}), 0u);
}

TEST(HoldCapacityTest, AgentsPerKernelCountsBootIds) {
  v1::Hello a, b, c, d;
  a.set_kernel_id("k1/net:[1]");
  b.set_kernel_id("k1/net:[2]");
  c.set_kernel_id("k2/net:[1]");
  d.set_name("d");  // gives no kernel id: a kernel of its own
  std::vector<const v1::Hello*> hellos = {&a, &b, &c, &d};
  EXPECT_EQ(AgentsPerKernel(hellos), (std::vector<uint32_t>{2, 2, 1, 1}));
}

}  // namespace
}  // namespace churnlab::analysis
