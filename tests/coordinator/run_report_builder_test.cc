#include "coordinator/run_report_builder.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "coordinator/source_detail.h"
#include "gtest/gtest.h"
#include "proto/message_json.h"
#include "proto/telemetry_codec.h"
#include "tests/support/addresses.h"

namespace churnlab {
namespace {

// The phase a word names ("connect-timeout").
v1::FailurePhase PhaseNamed(const std::string& word) {
  return static_cast<v1::FailurePhase>(*EnumFromWord(*v1::FailurePhase_descriptor(), word));
}

ShardRecord Shard(const std::string& agent, std::vector<std::string> ips, double rate,
                  const std::string& tw_reuse = "0") {
  ShardRecord shard;
  shard.assignment.agent = agent;
  shard.assignment.sources = testing::Ips(ips);
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
  EXPECT_EQ(report.verdict(), v1::RunReport::VERDICT_UNSPECIFIED);
  EXPECT_EQ(report.thresholds_size(), 0);

  std::vector<analysis::ShardFacts> facts = FactsOf(run);
  ASSERT_EQ(facts.size(), 2u);
  EXPECT_EQ(facts[1].hello->name(), "a2");
  EXPECT_EQ(facts[1].sources.size(), 1u);
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
    f->set_phase(PhaseNamed(phase));
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

void AddFailure(v1::SourceCounts* source, const std::string& phase, const std::string& code,
                uint64_t count) {
  v1::FailureCount* f = source->add_failures();
  f->set_phase(PhaseNamed(phase));
  f->set_code(code);
  f->set_count(count);
}

// Cumulative telemetry of a1's first source: `bind_fails` EADDRNOTAVAIL at bind, `connect_fails`
// at connect, 2 connect timeouts.
void Telemetry(RunRecord* run, uint64_t bind_fails, uint64_t connect_fails) {
  v1::SourceCounts* source = run->shards[0].latest.add_sources();
  source->set_ip("10.0.1.1");
  source->set_attempted(100);
  AddFailure(source, "bind", "EADDRNOTAVAIL", bind_fails);
  AddFailure(source, "connect", "EADDRNOTAVAIL", connect_fails);
  AddFailure(source, "connect-timeout", "ETIMEDOUT", 2);
}

// The report keeps the phase of each failure beside the errors keyed by errno alone, and series
// points carry the interval's part of both.
TEST(BuildReportTest, FailuresKeepTheirPhaseInTheReportAndTheSeries) {
  RunRecord run = MakeRun(v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_NO_PORT);
  Telemetry(&run, 3, 5);
  v1::RunReport first = BuildReport(run);
  EXPECT_EQ(first.errors().at("EADDRNOTAVAIL"), 8u);
  ASSERT_EQ(first.failures_size(), 3);  // sorted by phase, then code
  EXPECT_EQ(Word(first.failures(0).phase()), "bind");
  EXPECT_EQ(first.failures(0).count(), 3u);
  EXPECT_EQ(Word(first.failures(1).phase()), "connect");
  EXPECT_EQ(first.failures(1).count(), 5u);
  EXPECT_EQ(Word(first.failures(2).phase()), "connect-timeout");
  AppendSeriesPoint(&run, first, 1.0);
  EXPECT_EQ(run.last_point.failures_size(), 3);

  run.shards[0].latest.Clear();
  Telemetry(&run, 3, 9);  // 4 more at connect, none at bind or timing out
  AppendSeriesPoint(&run, BuildReport(run), 2.0);
  ASSERT_EQ(run.last_point.failures_size(), 1);
  EXPECT_EQ(Word(run.last_point.failures(0).phase()), "connect");
  EXPECT_EQ(run.last_point.failures(0).code(), "EADDRNOTAVAIL");
  EXPECT_EQ(run.last_point.failures(0).count(), 4u);
  EXPECT_EQ(run.last_point.errors().at("EADDRNOTAVAIL"), 4u);
}

// A point keeps the fullest kMaxPointSources sources; the agent's states, the point's TIME_WAIT
// and its fullest fill count every source (a run's agents may bring 4,096 IPs each).
TEST(AppendSeriesPointTest, APointKeepsItsFullestSourcesAndCountsThemAll) {
  RunRecord run = MakeRun(v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_NO_PORT);
  v1::ShardTelemetry& latest = run.shards[0].latest;
  latest.set_port_range_size(1000);
  uint64_t time_wait = 0;
  for (int i = 0; i < 100; ++i) {
    v1::SourceCounts* source = latest.add_sources();
    source->set_ip(absl::StrCat("10.0.1.", i));
    source->set_ports_in_use(static_cast<uint64_t>(i));
    source->mutable_tcp_states()->set_time_wait(static_cast<uint64_t>(i));
    time_wait += static_cast<uint64_t>(i);
  }
  AppendSeriesPoint(&run, BuildReport(run), 1.0);
  const v1::AgentPoint& agent = run.last_point.agents(0);
  ASSERT_EQ(agent.sources_size(), static_cast<int>(kMaxPointSources));
  EXPECT_EQ(agent.sources(0).ports_in_use(), 100 - kMaxPointSources);
  EXPECT_EQ(agent.sources_omitted(), 100 - kMaxPointSources);
  EXPECT_EQ(agent.tcp_states().time_wait(), time_wait);
  EXPECT_EQ(run.last_point.time_wait(), time_wait);
  EXPECT_DOUBLE_EQ(run.last_point.max_port_fill(), 99 / 1000.0);
}

// The connect latency's histogram at its fixed bounds is exact: each bound ends a bucket of the
// agents' log-linear histograms, merged over agents.
TEST(BuildReportTest, ConnectLatencyHistogramIsExactAtItsBounds) {
  RunRecord run = MakeRun(v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_NO_PORT);
  Histogram a1;
  a1.Record(8191);   // exactly the first bound: counts under it
  a1.Record(8192);   // the next nanosecond: under the second
  a1.Record(50000);  // 50 us
  Histogram a2;
  a2.RecordCount(2'000'000'000, 2);  // 2 s
  a2.Record(int64_t{1} << 36);       // 68.7 s: past the last bound, only in the count
  HistogramToProto(a1, run.shards[0].latest.mutable_connect_latency());
  HistogramToProto(a2, run.shards[1].latest.mutable_connect_latency());
  run.started_wall = absl::FromUnixMillis(1'800'000'000'123);  // what people read
  v1::RunReport report = BuildReport(run);
  const v1::LatencyHistogram& h = report.latency().connect_histogram();
  const std::vector<int64_t>& bounds = LatencyHistogramBoundsNanos();
  ASSERT_EQ(h.buckets_size(), static_cast<int>(bounds.size()));
  EXPECT_EQ(h.count(), 6u);
  EXPECT_DOUBLE_EQ(h.sum_ms(), (8191 + 8192 + 50000 + 4e9 + (int64_t{1} << 36)) / 1e6);
  for (int i = 0; i < h.buckets_size(); ++i) {
    uint64_t expected = 0;
    for (int64_t v : {int64_t{8191}, int64_t{8192}, int64_t{50000}, int64_t{2'000'000'000},
                      int64_t{2'000'000'000}, int64_t{1} << 36}) {
      expected += v <= bounds[i] ? 1 : 0;
    }
    EXPECT_EQ(h.buckets(i).count(), expected) << "le " << bounds[i] << " ns";
    EXPECT_DOUBLE_EQ(h.buckets(i).le_ms(), bounds[i] / 1e6);
  }
  EXPECT_EQ(h.buckets(0).count(), 1u);
  EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToMilliseconds(report.start_time()),
            1'800'000'000'123);
}

// conntrack reaches the report from each agent's last telemetry; the target's peers from every
// census of the run, each address once, at most 16.
TEST(BuildReportTest, ConntrackAndTheTargetsPeersReachTheReport) {
  RunRecord run = MakeRun(v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_NO_PORT);
  v1::ConntrackTable* table = run.shards[0].latest.mutable_host()->mutable_conntrack();
  table->set_count(10);
  table->set_peak_count(40);
  table->set_max(262144);
  ObserverRecord observer;
  observer.name = "target";
  for (int census = 0; census < 3; ++census) {
    v1::ShardTelemetry t;
    v1::ListenSockets* listen = t.add_listen();
    listen->set_address("10.0.0.1:80");
    listen->add_peer_ips("192.0.2.1");
    for (int i = 0; i < 10; ++i)
      listen->add_peer_ips("198.51.100." + std::to_string(census * 10 + i));
    UpdateObserver(&observer, t);
  }
  run.observers.push_back(observer);
  v1::RunReport report = BuildReport(run);
  EXPECT_EQ(report.agents(0).conntrack().peak_count(), 40u);
  EXPECT_EQ(report.agents(0).conntrack().max(), 262144u);
  EXPECT_FALSE(report.agents(1).has_conntrack());
  const v1::ListenReport& listen = report.observers(0).listen(0);
  ASSERT_EQ(listen.peer_ips_size(), 16);
  EXPECT_EQ(listen.peer_ips(0), "192.0.2.1");
  EXPECT_EQ(std::count(listen.peer_ips().begin(), listen.peer_ips().end(), "192.0.2.1"), 1);
}

}  // namespace
}  // namespace churnlab
