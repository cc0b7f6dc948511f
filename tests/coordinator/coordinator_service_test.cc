// The coordinator's gRPC services over a real server on port 0, with fake agents speaking the
// real AgentGateway protocol and the clock driven by hand through Tick().
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include <thread>

#include "churnlab/v1/agent.grpc.pb.h"
#include "churnlab/v1/control.grpc.pb.h"
#include "coordinator/coordinator.h"
#include "coordinator/run_store.h"
#include "coordinator/services.h"
#include "gtest/gtest.h"
#include "tests/support/child_process.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

class FakeAgent {
 public:
  FakeAgent(std::shared_ptr<grpc::Channel> channel, const std::string& name,
            std::vector<std::string> ips)
      : stub_(v1::AgentGateway::NewStub(channel)) {
    stream_ = stub_->Attach(&context_);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_name(name);
    hello.mutable_hello()->set_host("test-host");
    for (const std::string& ip : ips) hello.mutable_hello()->add_source_ips(ip);
    hello.mutable_hello()->add_allow_targets("127.0.0.0/8");
    stream_->Write(hello);
  }
  ~FakeAgent() {
    if (closed_) return;
    context_.TryCancel();
    stream_->Finish();
  }
  // The next message from the coordinator; false when the stream ended.
  bool Read(v1::CoordinatorMessage* message) { return stream_->Read(message); }
  void Send(const v1::AgentMessage& message) { stream_->Write(message); }
  grpc::Status Close() {
    stream_->WritesDone();
    v1::CoordinatorMessage ignored;
    while (stream_->Read(&ignored)) {
    }
    closed_ = true;
    return stream_->Finish();
  }
  void SendTelemetry(const std::string& run_id, const std::string& ip, uint64_t ok,
                     uint64_t refused, bool final) {
    v1::AgentMessage m;
    v1::ShardTelemetry* t = m.mutable_telemetry();
    t->set_run_id(run_id);
    *t->mutable_elapsed() = TimeUtil::SecondsToDuration(2);
    v1::SourceCounts* s = t->add_sources();
    s->set_ip(ip);
    s->set_attempted(ok + refused);
    s->set_succeeded(ok);
    s->set_requests(ok);
    if (refused > 0) {
      v1::FailureCount* f = s->add_failures();
      f->set_phase(v1::FAILURE_PHASE_CONNECT);
      f->set_code("ECONNREFUSED");
      f->set_count(refused);
    }
    t->set_final(final);
    Send(m);
  }

 private:
  std::unique_ptr<v1::AgentGateway::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::CoordinatorMessage>> stream_;
  bool closed_ = false;
};

class CoordinatorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_path_ = testing::MakeTempDir() + "/runs.db";
    store_ = *RunStore::Open(db_path_);
    Coordinator::Options options;
    options.start_after = absl::ZeroDuration();
    options.finish_grace = absl::Seconds(1);
    // Longer than the silence that marks an agent lost, so a test can tell the two apart.
    options.lease = absl::Seconds(10);
    coordinator_ = std::make_unique<Coordinator>(store_.get(), options);
    gateway_ = std::make_unique<AgentGatewayService>(coordinator_.get());
    control_ = std::make_unique<ControlService>(coordinator_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(gateway_.get());
    builder.RegisterService(control_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    stub_ = v1::Control::NewStub(channel_);
  }
  void TearDown() override { server_->Shutdown(std::chrono::system_clock::now()); }

  std::unique_ptr<FakeAgent> Attach(const std::string& name, std::vector<std::string> ips) {
    auto agent = std::make_unique<FakeAgent>(channel_, name, ips);
    v1::CoordinatorMessage welcome;
    EXPECT_TRUE(agent->Read(&welcome));
    EXPECT_TRUE(welcome.has_welcome());
    return agent;
  }

  absl::StatusOr<v1::StartRunResponse> Start(double rate,
                                             std::vector<std::string> thresholds = {}) {
    grpc::ClientContext context;
    v1::StartRunRequest request;
    request.mutable_spec()->add_targets("127.0.0.1:9000");
    request.mutable_spec()->set_rate(rate);
    *request.mutable_spec()->mutable_duration() = TimeUtil::SecondsToDuration(2);
    for (const std::string& t : thresholds) request.mutable_spec()->add_thresholds(t);
    v1::StartRunResponse response;
    grpc::Status status = stub_->StartRun(&context, request, &response);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return response;
  }

  v1::RunReport Get(const std::string& run_id) {
    grpc::ClientContext context;
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    v1::GetRunResponse response;
    EXPECT_TRUE(stub_->GetRun(&context, request, &response).ok());
    return response.report();
  }

  // Ticks the coordinator until the run has a verdict (telemetry is handled asynchronously).
  v1::RunReport WaitForVerdict(const std::string& run_id) {
    v1::RunReport report;
    // Up to 20 s, a bound for a broken build (a busy machine has taken seconds).
    for (int i = 0; i < 2000 && report.verdict() == v1::RunReport::VERDICT_UNSPECIFIED; ++i) {
      coordinator_->Tick(coordinator_->Now());
      report = Get(run_id);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return report;
  }

  // Waits until the coordinator has handled `n` telemetry messages (they arrive on gRPC's
  // threads); up to 20 s, a bound for a broken build.
  bool WaitForTelemetry(uint64_t n) {
    for (int i = 0; i < 2000 && coordinator_->telemetry_messages() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return coordinator_->telemetry_messages() >= n;
  }

  std::string db_path_;
  std::unique_ptr<RunStore> store_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<AgentGatewayService> gateway_;
  std::unique_ptr<ControlService> control_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Control::Stub> stub_;
};

TEST_F(CoordinatorServiceTest, ARunIsSplitAcrossAgentsAndMergedIntoOneReport) {
  auto a = Attach("a", {"127.0.0.2"});
  auto b = Attach("b", {"127.0.0.3"});
  absl::StatusOr<v1::StartRunResponse> started = Start(101, {"error_rate < 0.5"});
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->agent_names_size(), 2);

  v1::CoordinatorMessage ma, mb;
  ASSERT_TRUE(a->Read(&ma));
  ASSERT_TRUE(b->Read(&mb));
  ASSERT_TRUE(ma.has_assign());
  EXPECT_DOUBLE_EQ(ma.assign().rate() + mb.assign().rate(), 101);
  EXPECT_EQ(ma.assign().source_ips(0), "127.0.0.2");
  EXPECT_EQ(ma.assign().run_id(), started->run_id());

  // A watcher sees the final report once every shard is final.
  grpc::ClientContext watch_context;
  v1::WatchRunRequest watch;
  watch.set_run_id(started->run_id());
  auto reader = stub_->WatchRun(&watch_context, watch);

  a->SendTelemetry(started->run_id(), "127.0.0.2", 100, 0, false);
  a->SendTelemetry(started->run_id(), "127.0.0.2", 200, 0, true);
  b->SendTelemetry(started->run_id(), "127.0.0.3", 150, 50, true);
  v1::RunReport report = WaitForVerdict(started->run_id());
  ASSERT_EQ(report.state(), v1::RunReport::STATE_COMPLETED);
  EXPECT_EQ(report.totals().attempted(), 400u);
  EXPECT_EQ(report.totals().succeeded(), 350u);
  EXPECT_EQ(report.totals().failed(), 50u);
  EXPECT_EQ(report.errors().at("ECONNREFUSED"), 50u);
  ASSERT_EQ(report.agents_size(), 2);
  EXPECT_EQ(report.agents(1).sources(0).failed(), 50u);
  EXPECT_EQ(report.verdict(), v1::RunReport::VERDICT_PASS);
  ASSERT_EQ(report.thresholds_size(), 1);
  EXPECT_DOUBLE_EQ(report.thresholds(0).observed(), 0.125);

  v1::RunUpdate update;
  v1::RunUpdate last;
  while (reader->Read(&update)) last = update;
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.report().verdict(), v1::RunReport::VERDICT_PASS);
  EXPECT_EQ(last.report().totals().attempted(), 400u);

  // Watching an ended run: its final report (read from the store), once, then OK; an unknown
  // run: NOT_FOUND.
  grpc::ClientContext ended_context;
  auto ended = stub_->WatchRun(&ended_context, watch);
  int updates = 0;
  while (ended->Read(&update)) ++updates;
  EXPECT_TRUE(ended->Finish().ok());
  EXPECT_EQ(updates, 1);
  EXPECT_EQ(update.report().totals().attempted(), 400u);
  grpc::ClientContext unknown_context;
  watch.set_run_id("r-nope");
  auto unknown = stub_->WatchRun(&unknown_context, watch);
  EXPECT_FALSE(unknown->Read(&update));
  EXPECT_EQ(unknown->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(CoordinatorServiceTest, AFailedThresholdFailsTheVerdict) {
  auto a = Attach("a", {"127.0.0.2"});
  absl::StatusOr<v1::StartRunResponse> started = Start(10, {"error_rate < 0.01"});
  ASSERT_TRUE(started.ok());
  a->SendTelemetry(started->run_id(), "127.0.0.2", 90, 10, true);
  v1::RunReport report = WaitForVerdict(started->run_id());
  EXPECT_EQ(report.verdict(), v1::RunReport::VERDICT_FAIL);
  EXPECT_FALSE(report.thresholds(0).passed());
}

TEST_F(CoordinatorServiceTest, ASecondAgentWithALiveNameIsRefused) {
  auto first = Attach("same", {"127.0.0.2"});
  FakeAgent second(channel_, "same", {"127.0.0.3"});
  grpc::Status status = second.Close();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(status.error_message().find("same"), std::string::npos);
}

TEST_F(CoordinatorServiceTest, NoAgentsMeansFailedPrecondition) {
  absl::StatusOr<v1::StartRunResponse> started = Start(10);
  EXPECT_EQ(started.status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<v1::StartRunResponse> bad = Start(-1);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorServiceTest, ALostAgentIsNamedInTheReportWithItsDataKept) {
  auto a = Attach("a", {"127.0.0.2"});
  auto b = Attach("b", {"127.0.0.3"});
  absl::StatusOr<v1::StartRunResponse> started = Start(100);
  ASSERT_TRUE(started.ok());
  b->SendTelemetry(started->run_id(), "127.0.0.3", 40, 0, false);
  a->SendTelemetry(started->run_id(), "127.0.0.2", 100, 0, true);
  ASSERT_TRUE(WaitForTelemetry(2));
  b.reset();  // the stream breaks
  v1::RunReport report = WaitForVerdict(started->run_id());
  ASSERT_EQ(report.agents_size(), 2);
  EXPECT_NE(report.agents(1).problem().find("lost"), std::string::npos)
      << report.agents(1).problem();
  EXPECT_EQ(report.agents(1).sources(0).succeeded(), 40u);
  EXPECT_EQ(report.totals().succeeded(), 140u);
  EXPECT_EQ(report.verdict(), v1::RunReport::VERDICT_FAIL);
}

// An agent whose stream stays open but which sends nothing (hung, or its network silently gone
// before keepalive notices) is marked lost after three seconds of silence, told to stop, and
// the run finishes with the others; the report says what went unrun.
TEST_F(CoordinatorServiceTest, ASilentAgentIsMarkedLostAndStopped) {
  auto a = Attach("a", {"127.0.0.2"});
  auto b = Attach("b", {"127.0.0.3"});
  absl::StatusOr<v1::StartRunResponse> started = Start(100);
  ASSERT_TRUE(started.ok());
  v1::CoordinatorMessage assign;
  ASSERT_TRUE(b->Read(&assign));
  a->SendTelemetry(started->run_id(), "127.0.0.2", 100, 0, true);
  ASSERT_TRUE(WaitForTelemetry(1));
  // Four seconds on the coordinator's clock, and not a word from b.
  coordinator_->Tick(coordinator_->Now() + absl::Seconds(4));
  v1::CoordinatorMessage stop;
  ASSERT_TRUE(b->Read(&stop));
  EXPECT_TRUE(stop.has_stop()) << stop.DebugString();
  v1::RunReport report = WaitForVerdict(started->run_id());
  ASSERT_EQ(report.agents_size(), 2);
  EXPECT_NE(report.agents(1).problem().find("no telemetry for 3s"), std::string::npos)
      << report.agents(1).problem();
  EXPECT_GT(report.agents(1).lost_after_s(), 3);
  bool said = false;
  for (const std::string& o : report.observations()) said = said || o.rfind("b was lost", 0) == 0;
  EXPECT_TRUE(said);
  EXPECT_EQ(report.verdict(), v1::RunReport::VERDICT_FAIL);
}

// The dead-man switch's lease: a Ping is answered with the agent's clock and the run its shard
// counts in. A silent agent that was granted a lease is marked lost as before, but its run
// ends only once that lease has lapsed (the agent, stopped and resumed, may start connections
// until then), and a lost agent's pings extend nothing.
TEST_F(CoordinatorServiceTest, ALeaseGrantedToALostAgentHoldsItsRunOpenUntilItLapses) {
  auto b = Attach("b", {"127.0.0.3"});
  absl::Time start = coordinator_->Now();
  absl::StatusOr<v1::StartRunResponse> started = Start(100);
  ASSERT_TRUE(started.ok());
  v1::CoordinatorMessage assign;
  ASSERT_TRUE(b->Read(&assign));
  v1::AgentMessage ping;
  ping.mutable_ping()->set_agent_clock_nanos(12345);
  b->Send(ping);
  v1::CoordinatorMessage lease;
  ASSERT_TRUE(b->Read(&lease));
  ASSERT_TRUE(lease.has_lease()) << lease.DebugString();
  EXPECT_EQ(lease.lease().agent_clock_nanos(), 12345);
  EXPECT_EQ(lease.lease().run_id(), started->run_id());
  EXPECT_EQ(TimeUtil::DurationToSeconds(lease.lease().duration()), 10);

  coordinator_->Tick(start + absl::Seconds(4));  // silent for 4 s: lost and told to stop
  v1::CoordinatorMessage stop;
  ASSERT_TRUE(b->Read(&stop));
  EXPECT_TRUE(stop.has_stop()) << stop.DebugString();
  EXPECT_EQ(Get(started->run_id()).state(), v1::RunReport::STATE_RUNNING);
  b->Send(ping);
  ASSERT_TRUE(b->Read(&lease));
  EXPECT_EQ(lease.lease().run_id(), "");  // lost: nothing to extend

  coordinator_->Tick(start + absl::Seconds(9));
  EXPECT_EQ(Get(started->run_id()).state(), v1::RunReport::STATE_RUNNING);
  coordinator_->Tick(coordinator_->Now() +
                     absl::Seconds(11));  // past the lease granted at the ping
  v1::RunReport report = WaitForVerdict(started->run_id());
  EXPECT_EQ(report.state(), v1::RunReport::STATE_FAILED);
  EXPECT_NE(report.agents(0).problem().find("no telemetry for 3s"), std::string::npos)
      << report.agents(0).problem();
}

TEST_F(CoordinatorServiceTest, RefusalsAndCancelReachTheReport) {
  auto a = Attach("a", {"127.0.0.2"});
  auto b = Attach("b", {"127.0.0.3"});
  absl::StatusOr<v1::StartRunResponse> started = Start(100);
  ASSERT_TRUE(started.ok());
  v1::CoordinatorMessage assign;
  ASSERT_TRUE(b->Read(&assign));
  v1::AgentMessage refusal;
  refusal.mutable_refusal()->set_run_id(started->run_id());
  refusal.mutable_refusal()->set_reason("target outside allow-list");
  b->Send(refusal);
  ASSERT_TRUE(a->Read(&assign));
  {
    grpc::ClientContext context;
    v1::CancelRunRequest cancel;
    cancel.set_run_id(started->run_id());
    v1::CancelRunResponse response;
    ASSERT_TRUE(stub_->CancelRun(&context, cancel, &response).ok());
  }
  v1::CoordinatorMessage stop;
  ASSERT_TRUE(a->Read(&stop));
  EXPECT_TRUE(stop.has_stop());
  a->SendTelemetry(started->run_id(), "127.0.0.2", 10, 0, true);
  v1::RunReport report = WaitForVerdict(started->run_id());
  EXPECT_EQ(report.state(), v1::RunReport::STATE_CANCELLED);
  EXPECT_NE(report.agents(1).problem().find("refused: target outside allow-list"),
            std::string::npos);
  // The refused agent's source carried nothing: the budget is a's alone.
  EXPECT_EQ(report.tuple_budget().sources_size(), 1);
  for (const v1::SourceBudget& s : report.tuple_budget().sources()) {
    EXPECT_EQ(s.agent(), "a") << s.ip();
  }
  // A run that ended cannot be cancelled again.
  grpc::ClientContext context;
  v1::CancelRunRequest cancel;
  cancel.set_run_id(started->run_id());
  v1::CancelRunResponse response;
  EXPECT_EQ(stub_->CancelRun(&context, cancel, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(CoordinatorServiceTest, TheStoreKeepsFinishedRunsAndMarksUnfinishedOnesInterrupted) {
  auto a = Attach("a", {"127.0.0.2"});
  absl::StatusOr<v1::StartRunResponse> done = Start(10);
  ASSERT_TRUE(done.ok());
  a->SendTelemetry(done->run_id(), "127.0.0.2", 20, 0, true);
  ASSERT_EQ(WaitForVerdict(done->run_id()).state(), v1::RunReport::STATE_COMPLETED);
  absl::StatusOr<v1::StartRunResponse> unfinished = Start(10);
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();

  absl::StatusOr<std::unique_ptr<RunStore>> reopened = RunStore::Open(db_path_);
  ASSERT_TRUE(reopened.ok());
  absl::StatusOr<v1::RunReport> finished = (*reopened)->Load(done->run_id());
  ASSERT_TRUE(finished.ok());
  EXPECT_EQ(finished->state(), v1::RunReport::STATE_COMPLETED);
  EXPECT_EQ(finished->totals().succeeded(), 20u);
  EXPECT_EQ((*reopened)->Load(unfinished->run_id())->state(), v1::RunReport::STATE_INTERRUPTED);
  EXPECT_EQ((*reopened)->List()->runs.size(), 2u);
  EXPECT_EQ((*reopened)->Load("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoordinatorServiceTest, TelemetryBeforeHelloIsRefused) {
  auto stub = v1::AgentGateway::NewStub(channel_);
  grpc::ClientContext context;
  auto stream = stub->Attach(&context);
  v1::AgentMessage telemetry;
  telemetry.mutable_telemetry()->set_run_id("x");
  stream->Write(telemetry);
  stream->WritesDone();
  v1::CoordinatorMessage ignored;
  while (stream->Read(&ignored)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace churnlab
