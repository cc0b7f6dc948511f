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

RunRecord MakeRun(std::string close, std::string bind) {
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

TEST(TupleBudgetTest, PortsTimesDestinationsOverTimeWaitPerSource) {
  v1::TupleBudget budget = ComputeTupleBudget(MakeRun("client-fin", "no-port"));
  ASSERT_EQ(budget.sources_size(), 3);
  EXPECT_DOUBLE_EQ(budget.sources(0).budget_rate(), 1000.0 * 2 / 60);
  EXPECT_DOUBLE_EQ(budget.total_rate(), 3 * 1000.0 * 2 / 60);
  EXPECT_DOUBLE_EQ(budget.sources(0).requested_rate(), 100);
  // 2,000 four-tuples at 100/s: gone after 20 s.
  EXPECT_DOUBLE_EQ(budget.sources(0).exhaustion_after_s(), 20);
  EXPECT_TRUE(budget.notes().empty());
}

TEST(TupleBudgetTest, NotesWhatChangesThePicture) {
  v1::TupleBudget bind = ComputeTupleBudget(MakeRun("client-fin", "bind"));
  EXPECT_EQ(bind.sources(0).destinations(), 1u);  // the port is reserved for every destination
  ASSERT_EQ(bind.notes_size(), 1);
  EXPECT_NE(bind.notes(0).find("bind mode bind"), std::string::npos);
  EXPECT_NE(ComputeTupleBudget(MakeRun("rst", "no-port")).notes(0).find("RST"), std::string::npos);
  RunRecord reuse = MakeRun("client-fin", "no-port");
  reuse.shards[1] = Shard("a2", {"10.0.2.1"}, 100, "1");
  EXPECT_NE(ComputeTupleBudget(reuse).notes(0).find("tcp_tw_reuse=1 on a2-host"),
            std::string::npos);
}

TEST(ObserveTest, NamesPortExhaustionListenOverflowAndSlowConnects) {
  v1::RunReport report;
  (*report.mutable_errors())["EADDRNOTAVAIL"] = 600;
  (*report.mutable_errors())["connect-timeout"] = 12;
  (*report.mutable_kernel_counters())["ListenOverflows"] = 40;
  v1::AgentReport* agent = report.add_agents();
  agent->set_name("a1");
  v1::SourceReport* source = agent->add_sources();
  source->set_ip("10.0.1.1");
  source->set_peak_ports_in_use(998);
  source->set_port_range_size(1000);
  source->set_peak_time_wait(990);
  for (int i = 0; i < 10; ++i) {
    v1::SeriesPoint* p = report.add_series();
    p->set_max_port_fill(i < 5 ? 0.2 : 0.95);
    p->set_connect_p99_ms(i < 5 ? 0.1 : 4.0);
  }
  std::vector<std::string> said = Observe(report);
  ASSERT_EQ(said.size(), 3u);
  EXPECT_NE(said[0].find("600 connects failed with EADDRNOTAVAIL"), std::string::npos);
  EXPECT_NE(said[0].find("10.0.1.1 (a1) peaked at 998 of 1000 ports"), std::string::npos);
  EXPECT_NE(said[1].find("listen queue overflowed"), std::string::npos);
  EXPECT_NE(said[1].find("not \"connection refused\""), std::string::npos);
  EXPECT_NE(said[2].find("connect() slowed"), std::string::npos);
  EXPECT_TRUE(Observe(v1::RunReport()).empty());
}

TEST(PreflightTest, WarnsOfFdLimitsAndPortsThatWillRunOut) {
  v1::RunSpec spec;
  spec.add_targets("10.0.0.1:80");
  spec.set_close_policy("client-fin");
  spec.set_bind_mode("no-port");
  AgentCandidate agent;
  agent.hello.set_name("a1");
  agent.hello.set_fd_limit(1024);
  agent.hello.mutable_port_range()->set_low(40000);
  agent.hello.mutable_port_range()->set_high(40999);
  (*agent.hello.mutable_sysctls())["net.ipv4.tcp_tw_reuse"] = "0";
  Assignment a{"a1", {"10.0.1.1"}, 200, 0, 5000};
  std::vector<std::string> warnings = PreflightWarnings(spec, {a}, {agent});
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("fd limit 1024 caps it at ~960"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("run out after ~5s"), std::string::npos) << warnings[1];
  a.rate = 10;
  a.max_in_flight = 100;
  EXPECT_TRUE(PreflightWarnings(spec, {a}, {agent}).empty());
}

}  // namespace
}  // namespace churnlab
