#include "coordinator/run_report_builder.h"

#include "gtest/gtest.h"

namespace churnlab {
namespace {

ShardRecord Shard(const std::string& agent, std::vector<std::string> ips, double rate,
                  const std::string& tw_reuse = "0") {
  ShardRecord shard;
  shard.assignment.agent = agent;
  shard.assignment.source_ips = std::move(ips);
  shard.assignment.rate = rate;
  shard.host = agent + "-host";
  shard.hello.set_name(agent);
  shard.hello.set_host(agent + "-host");
  shard.hello.mutable_port_range()->set_low(40000);
  shard.hello.mutable_port_range()->set_high(40999);
  (*shard.hello.mutable_sysctls())["net.ipv4.tcp_tw_reuse"] = tw_reuse;
  return shard;
}

RunRecord MakeRun(v1::ClosePolicy close, v1::BindMode bind) {
  RunRecord run;
  run.spec.add_targets("10.0.0.1:80");
  run.spec.add_targets("10.0.0.1:81");
  run.spec.set_rate(300);
  run.spec.set_close_policy(close);
  run.spec.set_bind_mode(bind);
  run.shards.push_back(Shard("a1", {"10.0.1.1", "10.0.1.2"}, 200));
  run.shards.push_back(Shard("a2", {"10.0.2.1"}, 100));
  return run;
}

// The report carries the analysis's budget over the run's own shards: their hellos and shares.
TEST(BuildReportTest, TheTupleBudgetComesFromTheShardsHellosAndShares) {
  RunRecord run = MakeRun(v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_NO_PORT);
  v1::RunReport report = BuildReport(run);
  const v1::TupleBudget& budget = report.tuple_budget();
  ASSERT_EQ(budget.sources_size(), 3);
  EXPECT_EQ(budget.sources(0).agent(), "a1");
  EXPECT_DOUBLE_EQ(budget.sources(0).requested_rate(), 100);
  EXPECT_DOUBLE_EQ(budget.sources(2).requested_rate(), 100);
  EXPECT_DOUBLE_EQ(budget.total_rate(), 3 * 1000.0 * 2 / 60);
  EXPECT_DOUBLE_EQ(budget.sources(0).exhaustion_after_s(), 20);
  EXPECT_FALSE(budget.summary().empty());
  // Not judged yet: a finished run's verdict comes after its series is attached.
  EXPECT_EQ(report.verdict(), "");
  EXPECT_EQ(report.thresholds_size(), 0);

  std::vector<analysis::ShardFacts> facts = FactsOf(run);
  ASSERT_EQ(facts.size(), 2u);
  EXPECT_EQ(facts[1].hello->name(), "a2");
  EXPECT_EQ(facts[1].source_ips.size(), 1u);
  EXPECT_DOUBLE_EQ(facts[1].rate, 100);
}

TEST(BuildReportTest, AnObserversSettingsReachTheReport) {
  RunRecord run = MakeRun(v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_NO_PORT);
  ObserverRecord observer;
  observer.name = "target";
  observer.sysctls["net.ipv4.tcp_abort_on_overflow"] = "1";
  run.observers.push_back(observer);
  v1::RunReport report = BuildReport(run);
  ASSERT_EQ(report.observers_size(), 1);
  EXPECT_EQ(report.observers(0).sysctls().at("net.ipv4.tcp_abort_on_overflow"), "1");
}

}  // namespace
}  // namespace churnlab
