// The Coordinator class without gRPC: agents are fake links, telemetry is handed in directly and
// the clock is driven through Tick(), so a whole run goes through the real report path.
#include "coordinator/coordinator.h"

#include <google/protobuf/util/time_util.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/histogram.h"
#include "gtest/gtest.h"
#include "proto/hello.h"
#include "proto/message_json.h"
#include "proto/telemetry_codec.h"
#include "tests/support/child_process.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

class RecordingLink : public AgentLink {
 public:
  void Send(const v1::CoordinatorMessage& message) override { sent.push_back(message); }
  std::vector<v1::CoordinatorMessage> sent;
};

v1::Hello AgentHello(const std::string& name, const std::string& ip) {
  v1::Hello hello;
  hello.set_name(name);
  hello.set_host(name + "-host");
  hello.add_source_ips(ip);
  hello.add_allow_targets("127.0.0.0/8");
  hello.mutable_port_range()->set_low(40000);
  hello.mutable_port_range()->set_high(40999);
  (*hello.mutable_sysctls())["net.ipv4.tcp_tw_reuse"] = "0";
  return hello;
}

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *RunStore::Open(":memory:");
    Coordinator::Options options;
    options.start_after = absl::ZeroDuration();
    options.now = [this] { return now_; };  // the test's clock: no sleeps
    coordinator_ = std::make_unique<Coordinator>(store_.get(), options);
  }
  // Moves the coordinator's clock on and lets it act on the new time.
  void AdvanceTo(absl::Time t) {
    now_ = t;
    coordinator_->Tick(t);
  }
  // The newest series point of the one run in flight (empty, with a failure, when there is none).
  v1::SeriesPoint NewestPoint() {
    std::vector<v1::RunReport> running = coordinator_->RunningReports();
    if (running.size() != 1 || running[0].series_size() == 0) {
      ADD_FAILURE() << running.size() << " runs in flight, or no series point";
      return v1::SeriesPoint();
    }
    return running[0].series(running[0].series_size() - 1);
  }

  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  std::unique_ptr<RunStore> store_;
  std::unique_ptr<Coordinator> coordinator_;
};

// One second of an agent's shard: cumulative counts, the source's ports in use now, and the
// connect latencies so far.
v1::ShardTelemetry Second(const std::string& run_id, int second, uint64_t ports_in_use,
                          const Histogram& connect, bool final) {
  v1::ShardTelemetry t;
  t.set_run_id(run_id);
  *t.mutable_elapsed() = TimeUtil::SecondsToDuration(second);
  t.set_port_range_size(1000);
  v1::SourceCounts* s = t.add_sources();
  s->set_ip("127.0.0.2");
  s->set_attempted(100 * second);
  s->set_succeeded(100 * second);
  s->set_requests(100 * second);
  s->set_ports_in_use(ports_in_use);
  s->set_peak_ports_in_use(ports_in_use);
  HistogramToProto(connect, t.mutable_connect_latency());
  t.set_final(final);
  return t;
}

// 100 new connections/s to 127.0.0.1:9000 for `seconds`.
v1::RunSpec HundredPerSecond(int seconds) {
  v1::RunSpec spec;
  spec.add_targets("127.0.0.1:9000");
  spec.set_rate(100);
  *spec.mutable_duration() = TimeUtil::SecondsToDuration(seconds);
  return spec;
}

// A run the coordinator was stopped during reads back, once the store is opened again, as
// interrupted and failed, with the reason, and with the data it had: judged like any other run's
// end, so the CLI watching it, `churnlab report` and JUnit all get a verdict.
TEST(CoordinatorRestartTest, ARunInFlightReadsBackInterruptedAndFailedWithItsReason) {
  const std::string dir = testing::MakeTempDir();
  const std::string path = dir + "/runs.db";
  {
    absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    v1::RunReport running;
    running.set_run_id("r-cut");
    running.set_state(v1::RunReport::STATE_RUNNING);
    *running.mutable_spec() = HundredPerSecond(10);
    running.mutable_totals()->set_attempted(300);
    running.mutable_totals()->set_succeeded(300);
    ASSERT_TRUE((*store)->Save(running).ok());
  }
  {
    absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    Coordinator coordinator(store->get(), Coordinator::Options{});
    absl::StatusOr<v1::RunReport> back = coordinator.GetRun("r-cut");
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->state(), v1::RunReport::STATE_INTERRUPTED);
    EXPECT_EQ(back->verdict(), v1::RunReport::VERDICT_FAIL);
    ASSERT_GE(back->verdict_reasons_size(), 1);
    EXPECT_NE(back->verdict_reasons(0).find("interrupted"), std::string::npos)
        << back->verdict_reasons(0);
    EXPECT_EQ(back->totals().succeeded(), 300);
  }
  std::filesystem::remove_all(dir);
}

// The slowdown observation reads the series; the series reaches the final report only through
// the run store. This is the path a real run takes, end to end.
TEST_F(CoordinatorTest, AFinishedRunsObservationsSeeItsSeries) {
  RecordingLink link;
  ASSERT_TRUE(coordinator_->AttachAgent(AgentHello("a1", "127.0.0.2"), &link).ok());
  absl::StatusOr<v1::StartRunResponse> started = coordinator_->StartRun(HundredPerSecond(8));
  ASSERT_TRUE(started.ok()) << started.status();
  absl::Time t0 = now_;

  // Ports fill 100 a second; connect() takes 30 us until 40% full, 4 ms from 50%.
  Histogram connect;
  const int kSeconds = 8;
  for (int i = 1; i <= kSeconds; ++i) {
    uint64_t ports = 100 * i;
    connect.RecordCount(ports < 400 ? 30'000 : ports >= 500 ? 4'000'000 : 500'000, 100);
    now_ = t0 + absl::Milliseconds(1300) * i;
    coordinator_->OnTelemetry("a1", Second(started->run_id(), i, ports, connect, i == kSeconds));
    AdvanceTo(now_);
  }
  absl::StatusOr<v1::RunReport> report = coordinator_->GetRun(started->run_id());
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->state(), v1::RunReport::STATE_COMPLETED);
  EXPECT_EQ(report->series_size(), kSeconds);
  std::string slowdown;
  for (const std::string& o : report->observations()) {
    if (o.find("connect() slowed") != std::string::npos) slowdown = o;
  }
  EXPECT_NE(slowdown.find("to 4.0"), std::string::npos) << slowdown;
  // No failures and no thresholds: the default rule, shown as such, and a pass.
  EXPECT_EQ(report->verdict(), v1::RunReport::VERDICT_PASS);
  ASSERT_EQ(report->thresholds_size(), 1);
  EXPECT_TRUE(report->thresholds(0).is_default());
}

// The dead-man rule on the coordinator's side, on its own clock: a shard silent for
// telemetry_silence (3 s) is lost, not a moment sooner, and its agent is told to stop.
TEST_F(CoordinatorTest, AShardSilentForThreeSecondsIsLostOnTheCoordinatorsClock) {
  RecordingLink link;
  ASSERT_TRUE(coordinator_->AttachAgent(AgentHello("a1", "127.0.0.2"), &link).ok());
  absl::StatusOr<v1::StartRunResponse> started = coordinator_->StartRun(HundredPerSecond(30));
  ASSERT_TRUE(started.ok()) << started.status();
  absl::Time t0 = now_;
  now_ = t0 + absl::Seconds(1);
  coordinator_->OnTelemetry("a1", Second(started->run_id(), 1, 100, Histogram(), false));
  AdvanceTo(t0 + absl::Milliseconds(3900));  // 2.9 s of silence
  absl::StatusOr<v1::RunReport> running = coordinator_->GetRun(started->run_id());
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_TRUE(running->agents(0).problem().empty()) << running->agents(0).problem();
  AdvanceTo(t0 + absl::Milliseconds(4100));  // 3.1 s
  absl::StatusOr<v1::RunReport> lost = coordinator_->GetRun(started->run_id());
  ASSERT_TRUE(lost.ok()) << lost.status();
  EXPECT_NE(lost->agents(0).problem().find("no telemetry for 3s"), std::string::npos)
      << lost->agents(0).problem();
  EXPECT_NEAR(lost->agents(0).lost_after_s(), 4.1, 0.01);
  ASSERT_FALSE(link.sent.empty());
  EXPECT_TRUE(link.sent.back().has_stop());
  // Its stream stays open (a cut link sends no FIN) until keepalive or TCP gives up, seconds
  // later: then it is listed lost, from when its silence lost it.
  std::vector<v1::AgentInfo> before = coordinator_->ListAgents();
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].state(), v1::AgentInfo::STATE_IDLE);
  const std::string listed_at = before[0].last_seen();  // after the silence lost it
  now_ = t0 + absl::Seconds(9);
  coordinator_->DetachAgent("a1", &link);
  std::vector<v1::AgentInfo> after = coordinator_->ListAgents();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].state(), v1::AgentInfo::STATE_LOST);
  EXPECT_LE(after[0].last_seen(), listed_at);  // RFC 3339 in UTC: in the order of time

  // An agent lost by silence that speaks again (a ping) is alive: its later detach is no loss.
  RecordingLink other;
  ASSERT_TRUE(coordinator_->AttachAgent(AgentHello("a2", "127.0.0.3"), &other).ok());
  absl::StatusOr<v1::StartRunResponse> second = coordinator_->StartRun(HundredPerSecond(30));
  ASSERT_TRUE(second.ok()) << second.status();
  AdvanceTo(now_ + absl::Seconds(4));
  coordinator_->LeaseFor("a2", v1::Ping());
  coordinator_->DetachAgent("a2", &other);
  for (const v1::AgentInfo& a : coordinator_->ListAgents()) {
    EXPECT_NE(a.hello().name(), "a2") << "listed as " << Word(a.state());
  }
}

// A busy host cannot make a lost agent: time in which the coordinator itself did not run (its
// ticker overslept) is not silence; and a shard whose telemetry already covered its whole load
// is not lost while its final report is late.
TEST_F(CoordinatorTest, TheCoordinatorsOwnStallAndALateFinalReportLoseNoAgent) {
  RecordingLink link;
  ASSERT_TRUE(coordinator_->AttachAgent(AgentHello("a1", "127.0.0.2"), &link).ok());
  absl::StatusOr<v1::StartRunResponse> started = coordinator_->StartRun(HundredPerSecond(5));
  ASSERT_TRUE(started.ok()) << started.status();
  absl::Time t0 = now_;
  now_ = t0 + absl::Seconds(1);
  coordinator_->OnTelemetry("a1", Second(started->run_id(), 1, 100, Histogram(), false));
  // The coordinator stopped for 2.5 s of the next 3.5: 1 s of silence it could have heard.
  now_ = t0 + absl::Milliseconds(4500);
  coordinator_->CreditStall(absl::Milliseconds(2500));
  AdvanceTo(now_);
  absl::StatusOr<v1::RunReport> running = coordinator_->GetRun(started->run_id());
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_TRUE(running->agents(0).problem().empty()) << running->agents(0).problem();
  // Its load ended at 5 s and it said so; then its final report is slow to come.
  coordinator_->OnTelemetry("a1", Second(started->run_id(), 5, 100, Histogram(), false));
  AdvanceTo(t0 + absl::Seconds(9));  // 4 s of silence after the load
  running = coordinator_->GetRun(started->run_id());
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_TRUE(running->agents(0).problem().empty()) << running->agents(0).problem();
  coordinator_->OnTelemetry("a1", Second(started->run_id(), 5, 100, Histogram(), true));
  AdvanceTo(t0 + absl::Seconds(10));
  absl::StatusOr<v1::RunReport> done = coordinator_->GetRun(started->run_id());
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::RunReport::STATE_COMPLETED);
  EXPECT_EQ(done->verdict(), v1::RunReport::VERDICT_PASS);
  EXPECT_EQ(done->agents(0).lost_after_s(), 0);
}

// Telemetry is checked where it enters: TCP-state names as an older agent sent them (an agent
// sending 150 new ones a second grew /metrics to 730 MB) are unknown fields now, discarded; a
// count of 2^64 - 1 is clamped instead of wrapping the totals, and counted.
TEST_F(CoordinatorTest, TelemetryNoHonestAgentSendsIsDroppedOrClampedAndCounted) {
  RecordingLink link;
  ASSERT_TRUE(coordinator_->AttachAgent(AgentHello("a1", "127.0.0.2"), &link).ok());
  absl::StatusOr<v1::StartRunResponse> started = coordinator_->StartRun(HundredPerSecond(30));
  ASSERT_TRUE(started.ok()) << started.status();
  v1::ShardTelemetry t = Second(started->run_id(), 1, 100, Histogram(), false);
  v1::SourceCounts* s = t.mutable_sources(0);
  s->mutable_tcp_states()->set_time_wait(90);
  s->mutable_tcp_states()->set_close_wait(UINT64_MAX);
  for (int i = 0; i < 150; ++i) {
    // The old map's entry {key: "STATE_i", value: 1} on its field number, 8.
    std::string name = absl::StrCat("STATE_", i);
    s->GetReflection()->MutableUnknownFields(s)->AddLengthDelimited(
        8, absl::StrCat("\x0a", std::string(1, static_cast<char>(name.size())), name, "\x10\x01"));
  }
  s->set_attempted(UINT64_MAX);
  t.mutable_census_age()->set_seconds(-5);  // no census is taken in the future
  v1::FailureCount* formula = s->add_failures();
  formula->set_phase(v1::FAILURE_PHASE_READ);
  formula->set_code("=HYPERLINK(\"x\")");  // no errno name: a spreadsheet's formula
  formula->set_count(1);
  coordinator_->OnTelemetry("a1", t);
  EXPECT_EQ(coordinator_->telemetry_entries_refused(), 4u);
  AdvanceTo(now_ + absl::Seconds(1));  // a series point from it
  absl::StatusOr<v1::RunReport> report = coordinator_->GetRun(started->run_id());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->agents(0).sources(0).attempted(), kMaxTelemetryCount);
  EXPECT_EQ(report->errors().count("=HYPERLINK(\"x\")"), 0u);
  EXPECT_EQ(report->errors().at("UNKNOWN"), 1u);
  v1::SeriesPoint newest = NewestPoint();
  ASSERT_EQ(newest.agents_size(), 1);
  ASSERT_EQ(newest.agents(0).sources_size(), 1);
  const v1::SourcePoint& point = newest.agents(0).sources(0);
  EXPECT_EQ(point.tcp_states().time_wait(), 90u);
  EXPECT_EQ(point.tcp_states().close_wait(), kMaxTelemetryCount);
  EXPECT_EQ(newest.census_age_s(), 0);
}

// An agent's refusal is kept as its words, cut at 1,024 bytes on a character's start: a cut
// inside "é" would leave bytes that are not UTF-8 in the report.
TEST_F(CoordinatorTest, ARefusalIsCutBetweenCharacters) {
  RecordingLink link;
  ASSERT_TRUE(coordinator_->AttachAgent(AgentHello("a1", "127.0.0.2"), &link).ok());
  absl::StatusOr<v1::StartRunResponse> started = coordinator_->StartRun(HundredPerSecond(30));
  ASSERT_TRUE(started.ok()) << started.status();
  v1::Refusal refusal;
  refusal.set_run_id(started->run_id());
  refusal.set_reason(std::string(1023, 'a') + "\xc3\xa9 and more");
  coordinator_->OnRefusal("a1", refusal);
  absl::StatusOr<v1::RunReport> report = coordinator_->GetRun(started->run_id());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->agents(0).problem(), "refused: " + std::string(1023, 'a'));
}

// The series carries the oldest agent's census age, so the live view can mark a census that a
// busy host left seconds behind instead of showing it as current.
TEST_F(CoordinatorTest, TheSeriesSaysHowOldTheCensusIs) {
  RecordingLink link;
  ASSERT_TRUE(coordinator_->AttachAgent(AgentHello("a1", "127.0.0.2"), &link).ok());
  absl::StatusOr<v1::StartRunResponse> started = coordinator_->StartRun(HundredPerSecond(30));
  ASSERT_TRUE(started.ok()) << started.status();
  v1::ShardTelemetry t = Second(started->run_id(), 1, 100, Histogram(), false);
  t.mutable_census_age()->set_seconds(7);
  t.mutable_census_age()->set_nanos(500'000'000);
  coordinator_->OnTelemetry("a1", t);
  AdvanceTo(now_ + absl::Seconds(1));
  EXPECT_DOUBLE_EQ(NewestPoint().census_age_s(), 7.5);
}

TEST_F(CoordinatorTest, StartRunWarnsFromTheSameBudgetAsTheReport) {
  RecordingLink link;
  v1::Hello hello = AgentHello("a1", "10.0.1.1");
  hello.clear_allow_targets();
  hello.add_allow_targets("10.0.0.0/8");
  (*hello.mutable_sysctls())["net.ipv4.tcp_tw_reuse"] = "2";  // loopback only
  ASSERT_TRUE(coordinator_->AttachAgent(hello, &link).ok());
  v1::RunSpec spec;
  spec.add_targets("10.0.0.1:80");
  spec.set_rate(200);
  *spec.mutable_duration() = TimeUtil::SecondsToDuration(30);
  absl::StatusOr<v1::StartRunResponse> started = coordinator_->StartRun(spec);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_EQ(started->warnings_size(), 1);
  EXPECT_NE(started->warnings(0).find("run out after ~5s"), std::string::npos)
      << started->warnings(0);
  absl::StatusOr<v1::RunReport> report = coordinator_->GetRun(started->run_id());
  ASSERT_TRUE(report.ok());
  EXPECT_DOUBLE_EQ(report->tuple_budget().sources(0).exhaustion_after_s(), 5);
}

// Agents re-send their hello when a setting changes; an update gets the limits of an attach, and
// the agent stays as it was.
TEST_F(CoordinatorTest, AHelloUpdateIsHeldToTheAttachLimits) {
  RecordingLink link;
  ASSERT_TRUE(coordinator_->AttachAgent(AgentHello("a1", "127.0.0.2"), &link).ok());
  v1::Hello big = AgentHello("a1", "127.0.0.2");
  for (int i = 0; i < 100'000; ++i) big.add_source_ips("127.0.0.3");
  absl::Status update = coordinator_->UpdateAgent("a1", big);
  EXPECT_EQ(update.code(), absl::StatusCode::kInvalidArgument) << update;
  EXPECT_NE(update.message().find("hello.source_ips"), std::string::npos) << update;
  v1::Hello huge_host = AgentHello("a1", "127.0.0.2");
  huge_host.set_host(std::string(3'900'000, 'h'));
  EXPECT_EQ(coordinator_->UpdateAgent("a1", huge_host).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(coordinator_->AttachAgent(huge_host, &link).code(), absl::StatusCode::kInvalidArgument);
  std::vector<v1::AgentInfo> agents = coordinator_->ListAgents();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].hello().source_ips_size(), 1);
  EXPECT_EQ(agents[0].hello().host(), "a1-host");
}

}  // namespace
}  // namespace churnlab

namespace churnlab {
namespace {

// A lost agent stays listed by a summary of its hello, not all of it: 256 of them with full
// hellos held ~80 MB.
TEST_F(CoordinatorTest, ALostAgentIsListedWithoutItsLists) {
  RecordingLink link;
  v1::Hello big = AgentHello("a1", "127.0.0.2");
  for (int i = 3; i < 250; ++i) big.add_source_ips(absl::StrCat("127.0.0.", i));
  for (int i = 0; i < 60; ++i) (*big.mutable_sysctls())[absl::StrCat("k", i)] = "v";
  ASSERT_TRUE(coordinator_->AttachAgent(big, &link).ok()) << ValidateHello(big);
  v1::RunSpec spec;
  spec.add_targets("127.0.0.1:9000");
  spec.set_rate(100);
  *spec.mutable_duration() = TimeUtil::SecondsToDuration(8);
  ASSERT_TRUE(coordinator_->StartRun(spec).ok());
  coordinator_->DetachAgent("a1", &link);
  std::vector<v1::AgentInfo> agents = coordinator_->ListAgents();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].state(), v1::AgentInfo::STATE_LOST);
  const v1::Hello& kept = agents[0].hello();
  EXPECT_EQ(kept.name(), "a1");
  EXPECT_EQ(kept.host(), "a1-host");
  EXPECT_EQ(kept.port_range().high(), 40999);
  EXPECT_EQ(kept.source_ips_size(), 16);
  EXPECT_EQ(kept.source_ips(0), "127.0.0.2");
  EXPECT_EQ(agents[0].source_ips_total(), 248u);
  ASSERT_EQ(kept.sysctls_size(), 1);  // tcp_tw_reuse alone, the page's column
  EXPECT_EQ(kept.sysctls().at("net.ipv4.tcp_tw_reuse"), "0");
  EXPECT_EQ(kept.allow_targets_size(), 1);
  // Asked for by name, a lost agent is still its summary: the rest is gone.
  EXPECT_EQ(coordinator_->ListAgents({"a1"})[0].hello().source_ips_size(), 16);
}

// A listing's size does not grow with agents' addresses: every agent in summary, the first 16
// of each list and the totals; asked for by name, the named agents in full.
TEST_F(CoordinatorTest, AgentsAreListedInSummaryAndInFullByName) {
  RecordingLink a, b;
  v1::Hello big = AgentHello("a1", "127.0.0.2");
  for (int i = 3; i < 100; ++i) big.add_source_ips(absl::StrCat("127.0.0.", i));
  for (int i = 0; i < 30; ++i) (*big.mutable_sysctls())[absl::StrCat("k", i)] = "v";
  ASSERT_TRUE(coordinator_->AttachAgent(big, &a).ok());
  ASSERT_TRUE(coordinator_->AttachAgent(AgentHello("a2", "127.0.1.2"), &b).ok());
  std::vector<v1::AgentInfo> summary = coordinator_->ListAgents();
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary[0].hello().source_ips_size(), 16);
  EXPECT_EQ(summary[0].source_ips_total(), 98u);
  EXPECT_EQ(summary[0].hello().sysctls_size(), 1);
  EXPECT_EQ(summary[0].state(), v1::AgentInfo::STATE_IDLE);
  EXPECT_EQ(summary[1].hello().source_ips_size(), 1);
  EXPECT_EQ(summary[1].source_ips_total(), 1u);
  std::vector<v1::AgentInfo> full = coordinator_->ListAgents({"a1", "nobody"});
  ASSERT_EQ(full.size(), 1u);
  EXPECT_EQ(full[0].hello().source_ips_size(), 98);
  EXPECT_EQ(full[0].hello().sysctls_size(), 31);
  EXPECT_EQ(full[0].source_ips_total(), 98u);
}

// --max-agents: one agent past the cap is refused (RESOURCE_EXHAUSTED) and counted; a name
// freed by one that left can attach again.
TEST_F(CoordinatorTest, AttachesPastMaxAgentsAreRefusedAndCounted) {
  Coordinator::Options options;
  options.max_agents = 2;
  Coordinator capped(store_.get(), options);
  RecordingLink a, b, c;
  ASSERT_TRUE(capped.AttachAgent(AgentHello("a1", "127.0.0.2"), &a).ok());
  ASSERT_TRUE(capped.AttachAgent(AgentHello("a2", "127.0.0.3"), &b).ok());
  absl::Status third = capped.AttachAgent(AgentHello("a3", "127.0.0.4"), &c);
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted) << third;
  EXPECT_NE(third.message().find("maximum of 2 agents"), std::string::npos) << third;
  EXPECT_EQ(capped.attaches_refused(), 1u);
  EXPECT_EQ(capped.ListAgents().size(), 2u);
  capped.DetachAgent("a2", &b);
  EXPECT_TRUE(capped.AttachAgent(AgentHello("a3", "127.0.0.4"), &c).ok());
  EXPECT_EQ(capped.attaches_refused(), 1u);
}

// WatchRun streams are a set a client can grow: past max_watches following runs, one more is
// refused and counted; a watcher that leaves frees its place.
TEST_F(CoordinatorTest, WatchersPastTheCapAreRefusedAndCounted) {
  Coordinator::Options options;
  options.max_watches = 2;
  Coordinator capped(store_.get(), options);
  RecordingLink link;
  ASSERT_TRUE(capped.AttachAgent(AgentHello("a1", "127.0.0.2"), &link).ok());
  absl::StatusOr<v1::StartRunResponse> started = capped.StartRun(HundredPerSecond(8));
  ASSERT_TRUE(started.ok()) << started.status();
  auto ignore = [](const v1::RunReport&, bool) {};
  absl::StatusOr<int> first = capped.Watch(started->run_id(), ignore);
  absl::StatusOr<int> second = capped.Watch(started->run_id(), ignore);
  ASSERT_TRUE(first.ok() && second.ok());
  absl::StatusOr<int> third = capped.Watch(started->run_id(), ignore);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted) << third.status();
  EXPECT_EQ(capped.watches_refused(), 1u);
  capped.Unwatch(*first);
  EXPECT_TRUE(capped.Watch(started->run_id(), ignore).ok());
  EXPECT_EQ(capped.watches_refused(), 1u);
  capped.Unwatch(*second);
}

}  // namespace
}  // namespace churnlab
