#include "coordinator/scheduler.h"

#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/hello.h"
#include "tests/support/addresses.h"

namespace churnlab {
namespace {

TEST(SplitTest, SharesAddUpExactlyAndDifferByAtMostOne) {
  for (int64_t total : {1, 7, 100, 1001, 999'999}) {
    for (int parts : {1, 2, 3, 7, 64}) {
      if (total < parts) continue;
      std::vector<int64_t> shares = SplitEvenly(total, parts);
      EXPECT_EQ(std::accumulate(shares.begin(), shares.end(), int64_t{0}), total);
      auto [lo, hi] = std::minmax_element(shares.begin(), shares.end());
      EXPECT_LE(*hi - *lo, 1) << total << "/" << parts;
    }
  }
}

TEST(SplitTest, RatesKeepTheirFraction) {
  std::vector<double> shares = SplitRate(1000.5, 3);
  EXPECT_DOUBLE_EQ(shares[0] + shares[1] + shares[2], 1000.5);
  EXPECT_DOUBLE_EQ(shares[0], 334.5);
  EXPECT_DOUBLE_EQ(shares[2], 333);
}

AgentCandidate Agent(const std::string& name, std::vector<std::string> ips, bool busy = false,
                     std::vector<std::string> allow = {"127.0.0.0/8"}) {
  AgentCandidate c;
  c.hello.set_name(name);
  for (const std::string& ip : ips) c.hello.add_source_ips(ip);
  for (const std::string& cidr : allow) c.hello.add_allow_targets(cidr);
  c.sources = SourceAddressesOf(c.hello);
  c.busy = busy;
  return c;
}

v1::RunSpec Spec(double rate) {
  v1::RunSpec spec;
  spec.add_targets("127.0.0.1:9000");
  spec.set_rate(rate);
  spec.set_max_in_flight(10000);
  spec.set_bind_mode(v1::BIND_MODE_NO_PORT);
  return spec;
}

TEST(PlanRunTest, UsesEveryIdleAgentThatAllowsTheTargets) {
  std::vector<AgentCandidate> agents = {
      Agent("c", {"127.0.0.4"}), Agent("a", {"127.0.0.2", "127.0.0.3"}),
      Agent("busy", {"127.0.0.5"}, true), Agent("far", {"127.0.0.6"}, false, {"10.0.0.0/8"})};
  absl::StatusOr<std::vector<Assignment>> plan = PlanRun(Spec(1001), agents);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ((*plan)[0].agent, "a");
  EXPECT_EQ(testing::IpStrings((*plan)[0].sources),
            (std::vector<std::string>{"127.0.0.2", "127.0.0.3"}));
  EXPECT_EQ((*plan)[1].agent, "c");
  EXPECT_DOUBLE_EQ((*plan)[0].rate + (*plan)[1].rate, 1001);
  EXPECT_EQ((*plan)[0].max_in_flight + (*plan)[1].max_in_flight, 10000);
}

// An agent's own caps, from its hello, refuse the run before anything is sent when its share
// would be above them (the agent would refuse the shard and the run start without it); the
// closed model has no rate to refuse (the agent paces under its cap).
TEST(PlanRunTest, ASharePastAnAgentsOwnCapIsRefusedNamingIt) {
  std::vector<AgentCandidate> agents = {Agent("capped", {"127.0.0.2"})};
  agents[0].hello.set_max_rate(10);
  agents[0].hello.set_max_in_flight(5);
  absl::StatusOr<std::vector<Assignment>> fast = PlanRun(Spec(100), agents);
  ASSERT_FALSE(fast.ok());
  EXPECT_EQ(fast.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fast.status().message(),
            "agent capped: its share, 100.0 conn/s, is above its --max-rate 10.0 (ask for less, "
            "or more agents)");
  v1::RunSpec slow = Spec(10);
  slow.set_max_in_flight(6);
  EXPECT_NE(PlanRun(slow, agents)
                .status()
                .message()
                .find("max_in_flight 6, is above its "
                      "--max-in-flight 5"),
            std::string::npos);
  slow.set_max_in_flight(5);
  EXPECT_TRUE(PlanRun(slow, agents).ok());
  v1::RunSpec closed = Spec(0);
  closed.set_concurrency(3);  // paced by the agent, whatever the rate
  EXPECT_TRUE(PlanRun(closed, agents).ok());
  closed.set_concurrency(6);
  EXPECT_NE(PlanRun(closed, agents).status().message().find("concurrency 6"), std::string::npos);
  // Two agents share 20/s and 10 in flight: 10/s and 5 each, within the caps.
  agents.push_back(Agent("other", {"127.0.0.3"}));
  agents[1].hello.set_max_rate(10);
  v1::RunSpec shared = Spec(20);
  shared.set_max_in_flight(10);
  EXPECT_TRUE(PlanRun(shared, agents).ok()) << PlanRun(shared, agents).status();
}

TEST(PlanRunTest, CountsNamesAndSourceIps) {
  std::vector<AgentCandidate> agents = {Agent("a", {"127.0.0.2", "127.0.0.3"}),
                                        Agent("b", {"127.0.0.4", "127.0.0.5"}),
                                        Agent("c", {"127.0.0.6"})};
  v1::RunSpec spec = Spec(100);
  spec.set_agents(2);
  spec.set_source_ips_per_agent(1);
  absl::StatusOr<std::vector<Assignment>> plan = PlanRun(spec, agents);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ(testing::IpStrings((*plan)[1].sources), std::vector<std::string>{"127.0.0.4"});

  v1::RunSpec named = Spec(100);
  named.add_agent_names("c");
  plan = PlanRun(named, agents);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->size(), 1u);
  EXPECT_EQ((*plan)[0].agent, "c");

  v1::RunSpec exact = Spec(100);
  exact.add_source_ips("127.0.0.3");
  exact.add_source_ips("127.0.0.6");
  plan = PlanRun(exact, agents);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ(testing::IpStrings((*plan)[0].sources), std::vector<std::string>{"127.0.0.3"});
  EXPECT_EQ((*plan)[1].agent, "c");
}

// A dual-stack agent used to be handed ::1 for an IPv4 run, which its engine refused ("::1 is
// not of the targets' family") and the run failed.
TEST(PlanRunTest, EachAgentGetsOnlySourceIpsOfTheTargetsFamily) {
  std::vector<AgentCandidate> agents = {
      Agent("dual", {"127.0.0.2", "::1"}, false, {"127.0.0.0/8", "::1/128"}),
      Agent("v6", {"::1"}, false, {"127.0.0.0/8", "::1/128"})};
  absl::StatusOr<std::vector<Assignment>> plan = PlanRun(Spec(100), agents);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 1u);
  EXPECT_EQ((*plan)[0].agent, "dual");
  EXPECT_EQ(testing::IpStrings((*plan)[0].sources), std::vector<std::string>{"127.0.0.2"});

  v1::RunSpec v6 = Spec(100);
  v6.set_targets(0, "[::1]:9000");
  plan = PlanRun(v6, agents);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ(testing::IpStrings((*plan)[0].sources), std::vector<std::string>{"::1"});

  v1::RunSpec named = Spec(100);
  named.add_agent_names("v6");
  plan = PlanRun(named, agents);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("offers no source IP of the targets' family (IPv4)"),
            std::string::npos)
      << plan.status();
}

TEST(PlanRunTest, ClosedModelSplitsConcurrency) {
  v1::RunSpec spec = Spec(0);
  spec.set_concurrency(10);
  absl::StatusOr<std::vector<Assignment>> plan = PlanRun(
      spec, {Agent("a", {"127.0.0.2"}), Agent("b", {"127.0.0.3"}), Agent("c", {"127.0.0.4"})});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ((*plan)[0].concurrency, 4);
  EXPECT_EQ((*plan)[1].concurrency, 3);
  EXPECT_EQ((*plan)[2].concurrency, 3);
}

TEST(SplitTest, ByWeightIsProportionalExactAndGivesEveryPartOne) {
  EXPECT_EQ(SplitByWeight(1000, {1, 3}), (std::vector<int64_t>{250, 750}));
  EXPECT_EQ(SplitByWeight(10, {1, 1, 1}), SplitEvenly(10, 3));  // ties to the earlier part
  EXPECT_EQ(SplitByWeight(7, {0, 0}), SplitEvenly(7, 2));
  // A tiny weight still gets one; the total stays exact.
  std::vector<int64_t> shares = SplitByWeight(100, {1, 1'000'000, 1'000'000});
  EXPECT_EQ(shares, (std::vector<int64_t>{1, 49, 50}));
  for (int64_t total : {4, 101, 999'999}) {
    std::vector<int64_t> s = SplitByWeight(total, {28232, 56464, 10, 7});
    EXPECT_EQ(std::accumulate(s.begin(), s.end(), int64_t{0}), total);
    for (int64_t share : s) EXPECT_GE(share, 1) << total;
  }
  // Weights near 2^64 (an fs.file-max of 2^63 - 1, say) still split exactly.
  std::vector<int64_t> huge =
      SplitByWeight(1'000'000, {9'223'372'036'854'775'807ull, 9'223'372'036'854'775'806ull, 3});
  EXPECT_EQ(std::accumulate(huge.begin(), huge.end(), int64_t{0}), 1'000'000);
  EXPECT_EQ(huge, (std::vector<int64_t>{499'999, 500'000, 1}));
  std::vector<double> rates = SplitRateByWeight(400.5, {1, 3});
  EXPECT_DOUBLE_EQ(rates[0], 100.5);
  EXPECT_DOUBLE_EQ(rates[1], 300);
}

// An agent whose hello says its ports, fs.file-max and memory.
AgentCandidate Host(const std::string& name, std::vector<std::string> ips, int ports,
                    uint64_t mem_available) {
  AgentCandidate c = Agent(name, std::move(ips));
  c.hello.mutable_port_range()->set_low(30000);
  c.hello.mutable_port_range()->set_high(30000 + ports - 1);
  c.hello.set_mem_available_bytes(mem_available);
  (*c.hello.mutable_sysctls())["fs.file-max"] = "9223372036854775807";
  return c;
}

TEST(PlanRunTest, HeldConnectionsAreSplitByWhatEachHostCanHold) {
  v1::RunSpec spec = Spec(0);
  spec.set_concurrency(30000);
  spec.mutable_hold()->set_seconds(60);
  // a: 10,000 ports on one source IP; b: 10,000 on each of two. Memory is plenty for both.
  std::vector<AgentCandidate> agents = {Host("a", {"127.0.0.2"}, 10000, 1ull << 34),
                                        Host("b", {"127.0.0.3", "127.0.0.4"}, 10000, 1ull << 34)};
  absl::StatusOr<std::vector<Assignment>> plan = PlanRun(spec, agents);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ((*plan)[0].concurrency, 10000);
  EXPECT_EQ((*plan)[1].concurrency, 20000);

  // Memory binds b first: ~5.5 KB a socket, two sockets a connection with the target on the
  // same host (loopback), so 110 MB hold 10,000; a has room for 20,000.
  agents[0] = Host("a", {"127.0.0.2"}, 20000, 1ull << 34);
  agents[1] = Host("b", {"127.0.0.3", "127.0.0.4"}, 10000, 110'000'000);
  plan = PlanRun(spec, agents);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ((*plan)[0].concurrency, 20000);
  EXPECT_EQ((*plan)[1].concurrency, 10000);

  // The open model's rate and cap follow the same weights.
  v1::RunSpec open = Spec(300);
  open.mutable_hold()->set_seconds(60);
  open.set_max_in_flight(30000);
  plan = PlanRun(open, agents);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_DOUBLE_EQ((*plan)[0].rate, 200);
  EXPECT_EQ((*plan)[1].max_in_flight, 10000);
}

// Agents on one kernel (one boot id, any namespaces) share its memory and fs.file-max: two of
// them on one host weigh half as much each as one alone on a host like it.
TEST(PlanRunTest, AgentsOnOneKernelShareWhatItCanHold) {
  v1::RunSpec spec = Spec(0);
  spec.set_concurrency(40000);
  spec.mutable_hold()->set_seconds(60);
  std::vector<AgentCandidate> agents = {Host("a1", {"127.0.0.2"}, 60000, 440'000'000),
                                        Host("a2", {"127.0.0.3"}, 60000, 440'000'000),
                                        Host("b", {"127.0.0.4"}, 60000, 440'000'000)};
  agents[0].hello.set_kernel_id("boot-a/net:[1]");
  agents[1].hello.set_kernel_id("boot-a/net:[2]");
  agents[2].hello.set_kernel_id("boot-b/net:[1]");
  absl::StatusOr<std::vector<Assignment>> plan = PlanRun(spec, agents);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ((*plan)[0].concurrency, 10000);
  EXPECT_EQ((*plan)[1].concurrency, 10000);
  EXPECT_EQ((*plan)[2].concurrency, 20000);
}

TEST(PlanRunTest, ChurnWithoutHoldOrWithoutHostFactsIsSplitEvenly) {
  std::vector<AgentCandidate> agents = {Host("a", {"127.0.0.2"}, 10000, 1ull << 34),
                                        Host("b", {"127.0.0.3", "127.0.0.4"}, 10000, 1ull << 34)};
  v1::RunSpec spec = Spec(0);
  spec.set_concurrency(30000);
  absl::StatusOr<std::vector<Assignment>> plan = PlanRun(spec, agents);  // no hold
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ((*plan)[0].concurrency, 15000);
  spec.mutable_hold()->set_seconds(60);
  agents[1] = Agent("b", {"127.0.0.3", "127.0.0.4"});  // an agent that says nothing of its host
  plan = PlanRun(spec, agents);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ((*plan)[0].concurrency, 15000);
}

TEST(PlanRunTest, ImpossibleSpecsNameWhatIsMissing) {
  std::vector<AgentCandidate> agents = {Agent("a", {"127.0.0.2"}), Agent("b", {"127.0.0.3"}, true)};
  auto error = [&](const v1::RunSpec& spec) {
    absl::StatusOr<std::vector<Assignment>> plan = PlanRun(spec, agents);
    EXPECT_FALSE(plan.ok());
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
    return std::string(plan.status().message());
  };
  v1::RunSpec too_many = Spec(100);
  too_many.set_agents(2);
  EXPECT_NE(error(too_many).find("asks for 2, only 1"), std::string::npos);
  v1::RunSpec busy = Spec(100);
  busy.add_agent_names("b");
  EXPECT_NE(error(busy).find("agent b: busy"), std::string::npos);
  v1::RunSpec ghost = Spec(100);
  ghost.add_agent_names("zz");
  EXPECT_NE(error(ghost).find("'zz'"), std::string::npos);
  v1::RunSpec outside = Spec(100);
  outside.set_targets(0, "192.0.2.1:80");
  EXPECT_NE(error(outside).find("192.0.2.1:80"), std::string::npos);
  v1::RunSpec ips = Spec(100);
  ips.set_source_ips_per_agent(2);
  EXPECT_NE(error(ips).find("source_ips_per_agent"), std::string::npos);
  v1::RunSpec unknown_ip = Spec(100);
  unknown_ip.add_source_ips("127.0.0.9");
  EXPECT_NE(error(unknown_ip).find("127.0.0.9"), std::string::npos);
  EXPECT_NE(std::string(PlanRun(Spec(100), {}).status().message()).find("no agent"),
            std::string::npos);
}

}  // namespace
}  // namespace churnlab

namespace churnlab {
namespace {

TEST(ObserverServesTargetsTest, ByAddressOrWildcardAtTheTargetPort) {
  // As the coordinator has them: a hello's listen addresses and the spec, each parsed once.
  auto listening = [](const char* address) {
    v1::Hello hello;
    hello.add_listen_addresses(address);
    return ListenAddressesOf(hello);
  };
  auto shape = [](const char* target) {
    v1::RunSpec spec;
    spec.add_targets(target);
    return analysis::ShapeOf(spec);
  };
  const auto exact = listening("127.0.0.1:9000");
  const auto wildcard = listening("0.0.0.0:9000");
  const auto other_port = listening("127.0.0.1:9001");
  // [::] takes IPv4 clients too (the target does not set IPV6_V6ONLY)
  const auto dual_stack = listening("[::]:9000");
  const analysis::RunShape spec = shape("127.0.0.1:9000");
  EXPECT_TRUE(ObserverServesTargets(exact, spec));
  EXPECT_TRUE(ObserverServesTargets(wildcard, spec));
  EXPECT_FALSE(ObserverServesTargets(other_port, spec));
  EXPECT_TRUE(ObserverServesTargets(dual_stack, spec));
  const analysis::RunShape six = shape("[::1]:9000");
  EXPECT_FALSE(ObserverServesTargets(wildcard, six));  // 0.0.0.0 takes no IPv6 client
  EXPECT_TRUE(ObserverServesTargets(dual_stack, six));

  // A target by name: by the addresses it resolves to here.
  const analysis::RunShape named = shape("localhost:9000");
  ASSERT_EQ(named.named_targets.size(), 1u);
  EXPECT_TRUE(named.targets.empty());
  EXPECT_FALSE(ObserverServesTargets(exact, named));
  const std::vector<SocketAddress> addresses = NamedTargetAddresses(named);
  ASSERT_FALSE(addresses.empty());
  EXPECT_TRUE(ObserverServesTargets(exact, named, addresses));
  EXPECT_FALSE(ObserverServesTargets(other_port, named, addresses));
}

}  // namespace
}  // namespace churnlab

namespace churnlab {
namespace {

// Planning at the limits (100 agents of 4,096 source IPs each, 10,000 exclusions and 10,000
// named source IPs) is a pass over each list; with linear finds it was their product (100k x
// 100k took 19.7 s under the coordinator's lock; here it would be 4e9 comparisons). The bound
// is loose on purpose (~0.8 s on a loaded 2-core machine): it only tells linear from quadratic.
TEST(PlanRunTest, PlanningIsLinearInTheSpecsLists) {
  std::vector<AgentCandidate> agents;
  for (int a = 0; a < 100; ++a) {
    std::vector<std::string> ips;
    for (int k = 0; k < 4096; ++k) {
      ips.push_back(absl::StrFormat("127.%d.%d.%d", a, k / 256, k % 256));
    }
    agents.push_back(Agent(absl::StrCat("agent-", a), ips));
  }
  v1::RunSpec spec = Spec(1000);
  for (int k = 0; k < 10'000; ++k) {
    spec.add_exclude_source_ips(absl::StrFormat("127.200.%d.%d", k / 256, k % 256));
    spec.add_source_ips(absl::StrFormat("127.%d.%d.%d", k % 100, (k / 100) / 256, (k / 100) % 256));
  }
  absl::Time start = absl::Now();
  absl::StatusOr<std::vector<Assignment>> plan = PlanRun(spec, agents);
  absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->size(), 100u);
  EXPECT_LT(took, absl::Seconds(10)) << "planning took " << took;
}

}  // namespace
}  // namespace churnlab
