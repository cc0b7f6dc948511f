// The engine's error paths, forced through the syscall seam: no network, simulated time, exact
// counts.
#include <errno.h>

#include <thread>

#include "agent/engine.h"
#include "agent/outcome.h"
#include "gtest/gtest.h"
#include "tests/support/fault_sys_calls.h"

namespace churnlab {
namespace {

using testing::FakeClock;
using testing::FaultSysCalls;

EngineParams OneSecondAt100PerSecond() {
  EngineParams p;
  p.targets = {*SocketAddress::ParseIpPort("127.0.0.1:9")};
  p.rate = 100;
  p.duration = absl::Seconds(1);
  p.connect_timeout = absl::Milliseconds(200);
  return p;
}

EngineSnapshot RunToEnd(EngineParams params, FaultSysCalls& sys, FakeClock& clock) {
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(std::move(params), sys, clock);
  EXPECT_TRUE(engine.ok()) << engine.status();
  (*engine)->Start();
  return (*engine)->Wait();
}

class EngineFaultTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  FaultSysCalls sys_{clock_};
};

TEST_F(EngineFaultTest, SocketEmfileIsCountedInTheSocketPhase) {
  sys_.socket_errno = EMFILE;
  EngineSnapshot s = RunToEnd(OneSecondAt100PerSecond(), sys_, clock_);
  OutcomeCounts t = s.Total();
  EXPECT_EQ(t.attempted, 100u);
  EXPECT_EQ(t.failures_of(Phase::kSocket, EMFILE), 100u);
  EXPECT_EQ(t.failed(), 100u);
  EXPECT_EQ(t.succeeded, 0u);
}

TEST_F(EngineFaultTest, ConnectEaddrnotavailIsCountedInTheConnectPhase) {
  sys_.connect_errno = EADDRNOTAVAIL;
  EngineSnapshot s = RunToEnd(OneSecondAt100PerSecond(), sys_, clock_);
  EXPECT_EQ(s.Total().failures_of(Phase::kConnect, EADDRNOTAVAIL), 100u);
  EXPECT_EQ(s.Total().failed(), s.Total().attempted);
  EXPECT_EQ(OutcomeCodeName(Phase::kConnect, EADDRNOTAVAIL), "EADDRNOTAVAIL");
}

TEST_F(EngineFaultTest, ConnectRefusedIsCountedPerSourceIp) {
  sys_.connect_errno = ECONNREFUSED;
  EngineParams p = OneSecondAt100PerSecond();
  p.bind_mode = BindMode::kNoPort;
  p.source_ips = {*SocketAddress::ParseIp("127.0.0.1"), *SocketAddress::ParseIp("127.0.0.2")};
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  ASSERT_EQ(s.sources.size(), 2u);
  EXPECT_EQ(s.sources[0].source, "127.0.0.1");
  EXPECT_EQ(s.sources[1].source, "127.0.0.2");
  // Round-robin: each source gets half.
  EXPECT_EQ(s.sources[0].counts.failures_of(Phase::kConnect, ECONNREFUSED), 50u);
  EXPECT_EQ(s.sources[1].counts.failures_of(Phase::kConnect, ECONNREFUSED), 50u);
}

TEST_F(EngineFaultTest, BindEaddrinuseIsCountedInTheBindPhase) {
  sys_.bind_errno = EADDRINUSE;
  EngineParams p = OneSecondAt100PerSecond();
  p.bind_mode = BindMode::kBind;
  p.source_ips = {*SocketAddress::ParseIp("127.0.0.1")};
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  EXPECT_EQ(s.Total().failures_of(Phase::kBind, EADDRINUSE), 100u);
}

TEST_F(EngineFaultTest, UnansweredSynsEndAsConnectTimeouts) {
  sys_.connect_hangs = true;
  EngineSnapshot s = RunToEnd(OneSecondAt100PerSecond(), sys_, clock_);
  OutcomeCounts t = s.Total();
  EXPECT_EQ(t.attempted, 100u);
  EXPECT_EQ(t.failures_of(Phase::kConnectTimeout, ETIMEDOUT), 100u);
  EXPECT_EQ(s.in_flight, 0u);
  // The last one started just before 1 s and timed out 200 ms later.
  EXPECT_GE(s.elapsed_nanos, 1'190'000'000);
  EXPECT_LE(s.elapsed_nanos, 1'300'000'000);
}

TEST_F(EngineFaultTest, StartsBeyondMaxInFlightAreCountedAsMissedNotDelayed) {
  sys_.connect_hangs = true;
  EngineParams p = OneSecondAt100PerSecond();
  p.max_in_flight = 10;
  p.connect_timeout = absl::Milliseconds(500);
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  OutcomeCounts t = s.Total();
  // Every scheduled start is either made or counted missed: none slides later in time.
  EXPECT_EQ(t.attempted + s.missed_starts, 100u);
  // 10 start at 0..90 ms, time out at 500..590 ms; 10 more start then, time out after 1 s.
  EXPECT_EQ(t.attempted, 20u);
  EXPECT_EQ(s.missed_starts, 80u);
  EXPECT_LT(s.start_lateness.max(), 1'000'000);  // starts were on time, not postponed
}

TEST_F(EngineFaultTest, StopEndsInFlightConnectionsAsStopped) {
  sys_.connect_hangs = true;
  EngineParams p = OneSecondAt100PerSecond();
  // Simulated time races ahead; nothing times out within it and at most 60 are ever open.
  p.connect_timeout = absl::Hours(2);
  p.duration = absl::Hours(1);
  p.max_in_flight = 60;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(p, sys_, clock_);
  ASSERT_TRUE(engine.ok()) << engine.status();
  (*engine)->Start();
  while ((*engine)->Snapshot().Total().attempted < 50) std::this_thread::yield();
  (*engine)->Stop();
  EngineSnapshot s = (*engine)->Wait();
  OutcomeCounts t = s.Total();
  EXPECT_GE(t.attempted, 50u);
  EXPECT_LE(t.attempted, 60u);
  EXPECT_EQ(t.failures_of(Phase::kStopped, 0), t.attempted);
  EXPECT_EQ(OutcomeCodeName(Phase::kStopped, 0), "STOPPED");
  EXPECT_EQ(s.in_flight, 0u);
}

TEST_F(EngineFaultTest, ClosedModelKeepsItsConcurrencyAndStopsAtMaxConnections) {
  sys_.connect_errno = ECONNREFUSED;
  EngineParams p = OneSecondAt100PerSecond();
  p.rate = 0;
  p.concurrency = 8;
  p.max_connections = 1000;
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  EXPECT_EQ(s.Total().attempted, 1000u);
  EXPECT_EQ(s.Total().failures_of(Phase::kConnect, ECONNREFUSED), 1000u);
}

TEST(EngineCreateTest, RejectsBadParamsNamingTheField) {
  EngineParams p = OneSecondAt100PerSecond();
  p.rate = -5;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(p);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("rate"), absl::string_view::npos);
  EXPECT_NE(engine.status().message().find("-5"), absl::string_view::npos);
}

TEST(EngineCreateTest, RejectsASourceIpThatIsNotOnThisHost) {
  EngineParams p = OneSecondAt100PerSecond();
  p.bind_mode = BindMode::kNoPort;
  p.source_ips = {*SocketAddress::ParseIp("192.0.2.77")};  // TEST-NET-1: never assigned here
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(p);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(engine.status().message().find("192.0.2.77"), absl::string_view::npos);
}

TEST(EngineCreateTest, SourceIpsNeedABindModeAndViceVersa) {
  EngineParams p = OneSecondAt100PerSecond();
  p.source_ips = {*SocketAddress::ParseIp("127.0.0.1")};
  EXPECT_NE(ValidateEngineParams(p).message().find("source_ips"), absl::string_view::npos);
  p.source_ips.clear();
  p.bind_mode = BindMode::kBind;
  EXPECT_NE(ValidateEngineParams(p).message().find("source_ips"), absl::string_view::npos);
}

}  // namespace
}  // namespace churnlab
