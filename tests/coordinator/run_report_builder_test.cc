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

// What the agents' telemetry said, in the words a Windows user knows, with the clients' FIN_WAIT2
// and the requests each connection carried.
TEST(BuildReportTest, WindowsWordsFinWait2AndRequestsPerConnection) {
  RunRecord run = MakeRun(v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_NO_PORT);
  v1::SourceCounts* source = run.shards[0].latest.add_sources();
  source->set_ip("10.0.1.1");
  source->set_attempted(12);
  source->set_succeeded(4);
  source->set_requests(410);  // 4 x 100, and 10 on the connection reset after its handshake
  source->set_peak_fin_wait2(7);
  auto fail = [source](const char* phase, const char* code, uint64_t n) {
    v1::FailureCount* f = source->add_failures();
    f->set_phase(phase);
    f->set_code(code);
    f->set_count(n);
  };
  fail("connect", "EADDRNOTAVAIL", 6);
  fail("read", "ECONNRESET", 1);
  fail("read", "EOF", 1);
  v1::RunReport report = BuildReport(run);
  ASSERT_EQ(report.windows_errors_size(), 2);  // EOF has no Windows code
  EXPECT_EQ(report.windows_errors().at("EADDRNOTAVAIL").code(), 10048);
  EXPECT_EQ(report.windows_errors().at("EADDRNOTAVAIL").dotnet_name(), "AddressAlreadyInUse");
  EXPECT_EQ(report.windows_errors().at("ECONNRESET").name(), "WSAECONNRESET");
  EXPECT_EQ(report.agents(0).sources(0).peak_fin_wait2(), 7u);
  // 410 requests over the 6 connections made: the 4 that succeeded and the 2 that failed after
  // their handshake; the 6 that never got a port made none.
  EXPECT_DOUBLE_EQ(report.totals().requests_per_connection(), 410.0 / 6);
}

}  // namespace
}  // namespace churnlab
