// What /metrics keeps of runs: final values that stay after a run ends, series labelled by run
// name that carry on from run to run, counters that never go down, and names that expire.
#include "coordinator/run_metrics.h"

#include <google/protobuf/util/time_util.h>

#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "proto/telemetry_codec.h"

namespace churnlab {
namespace {

// The samples of an exposition, by their metric name and labels as written.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    size_t space = line.rfind(' ');
    double value = 0;
    EXPECT_TRUE(absl::SimpleAtod(line.substr(space + 1), &value)) << line;
    out[std::string(line.substr(0, space))] = value;
  }
  return out;
}

// The sample `key`; a failure when there is none.
double Value(const std::map<std::string, double>& samples, const std::string& key) {
  auto it = samples.find(key);
  if (it == samples.end()) {
    ADD_FAILURE() << "no sample " << key;
    return -1;
  }
  return it->second;
}

// A run's report: agent a1 with source 127.0.0.2, `n` attempts of which `refused` failed, a
// connect latency of 100 us for each success, the target observed.
v1::RunReport Report(const std::string& id, const std::string& name, uint64_t n, uint64_t refused) {
  v1::RunReport r;
  r.set_run_id(id);
  r.mutable_spec()->set_name(name);
  r.mutable_spec()->mutable_duration()->set_seconds(8);
  r.set_state(v1::RunReport::STATE_RUNNING);
  r.set_requested_rate(200);
  r.set_duration_s(n / 200.0);
  *r.mutable_start_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1'800'000'000);
  v1::AgentReport* agent = r.add_agents();
  agent->set_name("a1");
  v1::SourceReport* s = agent->add_sources();
  s->set_ip("127.0.0.2");
  s->set_attempted(n);
  s->set_succeeded(n - refused);
  s->set_failed(refused);
  s->set_port_range_size(1000);
  if (refused > 0) (*s->mutable_errors())["ECONNREFUSED"] = refused;
  r.mutable_totals()->set_attempted(n);
  r.mutable_totals()->set_succeeded(n - refused);
  r.mutable_totals()->set_failed(refused);
  r.mutable_totals()->set_requests(n - refused);
  (*r.mutable_kernel_counters())["ActiveOpens"] = static_cast<int64_t>(n);
  Histogram connect;
  connect.RecordCount(100'000, n - refused);
  SummarizeHistogram(connect, r.mutable_latency()->mutable_connect_histogram());
  v1::ObserverReport* o = r.add_observers();
  o->set_name("target");
  (*o->mutable_kernel_counters())["PassiveOpens"] = static_cast<int64_t>(n - refused);
  v1::SeriesPoint* now = r.add_series();
  now->set_in_flight(3);
  v1::AgentPoint* a = now->add_agents();
  a->set_name("a1");
  v1::SourcePoint* p = a->add_sources();
  p->set_ip("127.0.0.2");
  p->set_ports_in_use(n / 2);
  p->mutable_tcp_states()->set_time_wait(n / 2);
  v1::ObserverPoint* op = now->add_observers();
  op->set_name("target");
  op->mutable_tcp_states()->set_close_wait(7);
  return r;
}

v1::RunReport Final(v1::RunReport r) {
  r.set_state(v1::RunReport::STATE_COMPLETED);
  r.set_verdict(v1::RunReport::VERDICT_PASS);
  v1::ThresholdResult* t = r.add_thresholds();
  t->set_expression("error_rate < 0.01");
  t->set_observed(0.5);
  t->set_passed(false);
  return r;
}

class RunMetricsTest : public ::testing::Test {
 protected:
  std::map<std::string, double> Scrape() {
    std::string text;
    int running = -1;
    metrics_.AppendTo(&text, &running);
    running_ = running;
    return Samples(text);
  }
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  RunMetrics metrics_{{absl::Hours(1), 3, [this] { return now_; }}};
  int running_ = -1;
};

const char kAttempted[] =
    R"(churnlab_connections_attempted_total{name="tw",agent="a1",source_ip="127.0.0.2"})";
const char kRefused[] =
    R"(churnlab_connections_failed_total{name="tw",agent="a1",source_ip="127.0.0.2",)"
    R"(error="ECONNREFUSED"})";

TEST_F(RunMetricsTest, ARunsFinalValuesStayAfterItEnds) {
  metrics_.OnReport(Report("r-1", "tw", 702, 2), false);
  std::map<std::string, double> live = Scrape();
  EXPECT_EQ(running_, 1);
  EXPECT_EQ(Value(live, kAttempted), 702);
  EXPECT_EQ(Value(live, R"(churnlab_run_running{name="tw"})"), 1);
  EXPECT_EQ(live.count(R"(churnlab_run_passed{name="tw"})"), 0u);

  metrics_.OnReport(Final(Report("r-1", "tw", 1600, 4)), true);
  now_ += absl::Minutes(30);
  std::map<std::string, double> after = Scrape();
  EXPECT_EQ(running_, 0);
  EXPECT_EQ(Value(after, R"(churnlab_run_info{name="tw",run_id="r-1"})"), 1);
  EXPECT_EQ(Value(after, R"(churnlab_run_running{name="tw"})"), 0);
  EXPECT_EQ(Value(after, R"(churnlab_run_passed{name="tw"})"), 1);
  EXPECT_EQ(Value(after, kAttempted), 1600);
  EXPECT_EQ(Value(after, kRefused), 4);
  EXPECT_EQ(Value(after, R"(churnlab_requests_total{name="tw"})"), 1596);
  EXPECT_EQ(Value(after, R"(churnlab_kernel_counter_total{name="tw",counter="ActiveOpens"})"),
            1600);
  EXPECT_EQ(Value(after, R"(churnlab_target_kernel_counter_total{name="tw",observer="target",)"
                         R"(counter="PassiveOpens"})"),
            1596);
  EXPECT_EQ(Value(after, R"(churnlab_target_tcp_sockets{name="tw",observer="target",)"
                         R"(state="CLOSE_WAIT"})"),
            7);
  EXPECT_EQ(
      Value(after, R"(churnlab_source_tcp_sockets{name="tw",agent="a1",source_ip="127.0.0.2",)"
                   R"(state="TIME_WAIT"})"),
      800);
  EXPECT_EQ(
      Value(after, R"(churnlab_run_threshold_observed{name="tw",threshold="error_rate < 0.01"})"),
      0.5);
  EXPECT_EQ(Value(after, R"(churnlab_run_start_time_seconds{name="tw"})"), 1'800'000'000);
  for (const auto& [sample, value] : after) {  // only churnlab_run_info names the run
    if (sample.rfind("churnlab_run_info{", 0) != 0) {
      EXPECT_EQ(sample.find("run_id"), std::string::npos) << sample;
    }
  }
}

// The connect latency is a Prometheus histogram: cumulative buckets by `le` in seconds, +Inf
// equal to the count, and the sum.
TEST_F(RunMetricsTest, ConnectLatencyIsAHistogram) {
  metrics_.OnReport(Final(Report("r-1", "tw", 100, 0)), true);
  std::map<std::string, double> s = Scrape();
  EXPECT_EQ(Value(s, R"(churnlab_connect_latency_seconds_bucket{name="tw",le="0.000065535"})"), 0);
  EXPECT_EQ(Value(s, R"(churnlab_connect_latency_seconds_bucket{name="tw",le="0.000131071"})"),
            100);
  EXPECT_EQ(Value(s, R"(churnlab_connect_latency_seconds_bucket{name="tw",le="+Inf"})"), 100);
  EXPECT_EQ(Value(s, R"(churnlab_connect_latency_seconds_count{name="tw"})"), 100);
  EXPECT_DOUBLE_EQ(Value(s, R"(churnlab_connect_latency_seconds_sum{name="tw"})"), 100 * 100e-6);
  double previous = 0;
  for (int64_t bound : LatencyHistogramBoundsNanos()) {
    std::string key =
        "churnlab_connect_latency_seconds_bucket{name=\"tw\",le=\"" + LeSeconds(bound) + "\"}";
    ASSERT_EQ(s.count(key), 1u) << key;
    EXPECT_GE(Value(s, key), previous) << key;
    previous = Value(s, key);
  }
}

// The next run of the same name continues the same series: counters add up over both runs and
// never go down at any update, so increase() over each run is that run's count; the gauges and
// churnlab_run_info move to the new run.
TEST_F(RunMetricsTest, TheNextRunOfTheNameContinuesTheSeries) {
  double last = 0;
  auto check = [&](const v1::RunReport& r, bool final) {
    metrics_.OnReport(r, final);
    double attempted = Value(Scrape(), kAttempted);
    EXPECT_GE(attempted, last) << r.run_id() << (final ? " final" : "");
    last = attempted;
  };
  check(Report("r-1", "tw", 500, 0), false);
  check(Final(Report("r-1", "tw", 1600, 0)), true);
  check(Report("r-2", "tw", 300, 10), false);
  check(Report("r-1", "tw", 900, 0), false);  // late: ignored, r-1 has ended
  check(Report("r-2", "tw", 1200, 20), false);
  check(Final(Report("r-2", "tw", 1600, 30)), true);
  std::map<std::string, double> s = Scrape();
  EXPECT_EQ(Value(s, kAttempted), 3200);
  EXPECT_EQ(Value(s, kRefused), 30);
  EXPECT_EQ(Value(s, R"(churnlab_connect_latency_seconds_count{name="tw"})"), 3170);
  EXPECT_EQ(s.count(R"(churnlab_run_info{name="tw",run_id="r-1"})"), 0u);
  EXPECT_EQ(Value(s, R"(churnlab_run_info{name="tw",run_id="r-2"})"), 1);
  EXPECT_EQ(Value(s, R"(churnlab_source_ports_in_use{name="tw",agent="a1",source_ip="127.0.0.2"})"),
            800);
}

// A TCP state that empties shows 0 rather than vanishing, on both sides.
TEST_F(RunMetricsTest, AStateThatEmptiesShowsZero) {
  metrics_.OnReport(Report("r-1", "tw", 100, 0), false);
  v1::RunReport later = Report("r-1", "tw", 200, 0);
  v1::SeriesPoint* now = later.mutable_series(0);
  now->mutable_observers(0)->mutable_tcp_states()->Clear();
  now->mutable_agents(0)->mutable_sources(0)->mutable_tcp_states()->Clear();
  now->mutable_agents(0)->mutable_sources(0)->mutable_tcp_states()->set_established(2);
  metrics_.OnReport(later, false);
  std::map<std::string, double> s = Scrape();
  EXPECT_EQ(Value(s, R"(churnlab_target_tcp_sockets{name="tw",observer="target",)"
                     R"(state="CLOSE_WAIT"})"),
            0);
  const std::string source =
      R"(churnlab_source_tcp_sockets{name="tw",agent="a1",source_ip="127.0.0.2",state=)";
  EXPECT_EQ(Value(s, source + R"("TIME_WAIT"})"), 0);
  EXPECT_EQ(Value(s, source + R"("ESTABLISHED"})"), 2);
}

// Runs of other names have series of their own; a name whose last run ended longer ago than
// the expiry is dropped (never one with a run in flight), and so is the oldest beyond max_names.
TEST_F(RunMetricsTest, NamesExpire) {
  metrics_.OnReport(Final(Report("r-1", "old", 10, 0)), true);
  now_ += absl::Minutes(50);
  metrics_.OnReport(Final(Report("r-2", "newer", 10, 0)), true);
  metrics_.OnReport(Report("r-3", "running", 10, 0), false);
  now_ += absl::Minutes(20);
  std::map<std::string, double> s = Scrape();
  EXPECT_EQ(s.count(R"(churnlab_run_info{name="old",run_id="r-1"})"), 0u);
  EXPECT_EQ(Value(s, R"(churnlab_run_info{name="newer",run_id="r-2"})"), 1);
  EXPECT_EQ(Value(s, R"(churnlab_run_info{name="running",run_id="r-3"})"), 1);
  now_ += absl::Hours(5);
  s = Scrape();
  EXPECT_EQ(s.count(R"(churnlab_run_info{name="newer",run_id="r-2"})"), 0u);
  EXPECT_EQ(Value(s, R"(churnlab_run_info{name="running",run_id="r-3"})"), 1);

  for (const char* name : {"a", "b", "c"}) {
    now_ += absl::Seconds(1);
    metrics_.OnReport(Final(Report(std::string("r-") + name, name, 10, 0)), true);
  }
  s = Scrape();  // at most 3 names: "running" stays (in flight), "a" ended first and goes
  EXPECT_EQ(s.count(R"(churnlab_run_info{name="a",run_id="r-a"})"), 0u);
  EXPECT_EQ(Value(s, R"(churnlab_run_info{name="b",run_id="r-b"})"), 1);
  EXPECT_EQ(Value(s, R"(churnlab_run_info{name="c",run_id="r-c"})"), 1);
  EXPECT_EQ(Value(s, R"(churnlab_run_info{name="running",run_id="r-3"})"), 1);
}

}  // namespace
}  // namespace churnlab

namespace churnlab {
namespace {

// Sources past the cap share one series per family: sum() over them stays the run's total, the
// number of series does not grow with agents x IPs, and the folded ones are counted.
TEST(RunMetricsCapTest, SourcesPastTheCapAreSummedAndCounted) {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  RunMetrics metrics({absl::Hours(1), 3, [&] { return now; }, /*max_sources=*/2});
  v1::RunReport r = Report("r-1", "big", 100, 10);
  for (int i = 3; i <= 5; ++i) {  // 4 sources of 100 attempts, 10 refused each
    v1::SourceReport* s = r.mutable_agents(0)->add_sources();
    *s = r.agents(0).sources(0);
    s->set_ip(absl::StrCat("127.0.0.", i));
    v1::SourcePoint* p = r.mutable_series(0)->mutable_agents(0)->add_sources();
    *p = r.series(0).agents(0).sources(0);
    p->set_ip(s->ip());
  }
  auto scrape = [&] {
    std::string text;
    int running = 0;
    metrics.AppendTo(&text, &running);
    return Samples(text);
  };
  const std::string folded = R"(churnlab_metrics_sources_folded{name="big"})";
  const std::string other_attempted =
      R"(churnlab_connections_attempted_total{name="big",agent="_other",source_ip="_other"})";
  metrics.OnReport(r, false);  // live: the first two have series, the others are summed
  std::map<std::string, double> live = scrape();
  EXPECT_EQ(Value(live, folded), 2);
  EXPECT_EQ(Value(live, other_attempted), 200);
  EXPECT_EQ(Value(live, R"(churnlab_connections_failed_total{name="big",agent="_other",)"
                        R"(source_ip="_other",error="ECONNREFUSED"})"),
            20);
  metrics.OnReport(Final(r), true);
  std::map<std::string, double> after = scrape();
  EXPECT_EQ(Value(after, folded), 2);
  double attempted = 0;
  int series = 0;
  int ports = 0;
  for (const auto& [sample, value] : after) {
    if (sample.rfind("churnlab_connections_attempted_total{", 0) == 0) {
      attempted += value;
      ++series;
    }
    ports += sample.rfind("churnlab_source_ports_in_use{", 0) == 0;
  }
  EXPECT_EQ(attempted, 400);
  EXPECT_EQ(series, 3);  // two sources and _other
  EXPECT_EQ(ports, 2);   // gauges of folded sources are left out, not summed
  EXPECT_EQ(Value(after, R"(churnlab_connections_attempted_total{name="big",agent="a1",)"
                         R"(source_ip="127.0.0.2"})"),
            100);
  // The next run keeps the same two: a series, once there, stays.
  metrics.OnReport(Final(Report("r-2", "big", 50, 0)), true);
  EXPECT_EQ(Value(scrape(), R"(churnlab_connections_attempted_total{name="big",agent="a1",)"
                            R"(source_ip="127.0.0.2"})"),
            150);
}

// Sources that appear late (an agent's first telemetry, a second run of the name in flight) take
// the slots left, never one a source already has: no counter goes down from scrape to scrape.
TEST(RunMetricsCapTest, ASourceThatHasItsSeriesKeepsIt) {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  RunMetrics metrics({absl::Hours(1), 3, [&] { return now; }, /*max_sources=*/2});
  auto with_source = [](v1::RunReport r, const std::string& ip) {
    v1::SourceReport* s = r.mutable_agents(0)->add_sources();
    *s = r.agents(0).sources(0);
    s->set_ip(ip);
    return r;
  };
  std::map<std::string, double> last;
  auto scrape_grows = [&](const char* when) {
    std::string text;
    int running = 0;
    metrics.AppendTo(&text, &running);
    std::map<std::string, double> now_samples = Samples(text);
    for (const auto& [sample, value] : last) {
      if (sample.find("_total{") == std::string::npos) continue;
      auto it = now_samples.find(sample);
      ASSERT_NE(it, now_samples.end()) << when << ": " << sample << " vanished";
      EXPECT_GE(it->second, value) << when << ": " << sample;
    }
    last = now_samples;
  };
  metrics.OnReport(Report("r-1", "n", 100, 0), false);  // 127.0.0.2
  scrape_grows("r-1 live");
  metrics.OnReport(with_source(with_source(Report("r-2", "n", 100, 0), "127.0.0.3"), "127.0.0.4"),
                   false);
  scrape_grows("r-2 live");
  // r-1's late agent brings 127.0.0.5; both runs end.
  metrics.OnReport(Final(with_source(Report("r-1", "n", 200, 0), "127.0.0.5")), true);
  scrape_grows("r-1 final");
  metrics.OnReport(
      Final(with_source(with_source(Report("r-2", "n", 200, 0), "127.0.0.3"), "127.0.0.4")), true);
  scrape_grows("r-2 final");
  EXPECT_EQ(Value(last, R"(churnlab_connections_attempted_total{name="n",agent="a1",)"
                        R"(source_ip="127.0.0.2"})"),
            400);  // r-1's and r-2's 127.0.0.2
  EXPECT_EQ(Value(last, R"(churnlab_connections_attempted_total{name="n",agent="a1",)"
                        R"(source_ip="127.0.0.3"})"),
            200);
  EXPECT_EQ(Value(last, R"(churnlab_connections_attempted_total{name="n",agent="_other",)"
                        R"(source_ip="_other"})"),
            400);  // 127.0.0.4 and 127.0.0.5
}

}  // namespace
}  // namespace churnlab
