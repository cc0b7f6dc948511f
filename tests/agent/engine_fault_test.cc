// The engine's error paths, forced through the syscall seam: no network, simulated time, exact
// counts.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
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
  if (!engine.ok()) {
    ADD_FAILURE() << engine.status();
    return EngineSnapshot{};
  }
  (*engine)->Start();
  return (*engine)->Wait();
}

class EngineFaultTest : public ::testing::Test {
 protected:
  // A leased engine whose lease ends `lease_nanos` after now, run to its end.
  EngineSnapshot RunLeased(EngineParams p, int64_t lease_nanos) {
    p.leased = true;
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(std::move(p), sys_, clock_);
    if (!engine.ok()) {
      ADD_FAILURE() << engine.status();
      return EngineSnapshot{};
    }
    (*engine)->ExtendLease(clock_.NowNanos() + lease_nanos);
    (*engine)->Start();
    return (*engine)->Wait();
  }

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

// A profile that ends at rate 0 starts nothing after its last connection: the next one is due
// "never", which must not wrap around to the past and start everything at once.
TEST_F(EngineFaultTest, AStagedProfileEndingAtZeroStartsExactlyItsConnections) {
  sys_.connect_errno = ECONNREFUSED;  // no network: each start ends at once
  EngineParams p = OneSecondAt100PerSecond();
  p.stages = {{absl::Seconds(1), 100}, {absl::Seconds(2), 0}};  // 50 + 100
  p.duration = absl::Seconds(3);
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  EXPECT_EQ(s.Total().attempted, 150u);
  EXPECT_EQ(s.late_starts, 0u);
}

// A leased engine (an agent's) starts nothing before its first lease and nothing once the
// lease has lapsed: the starts due then are counted late, never made.
TEST_F(EngineFaultTest, ALeasedEngineStartsOnlyWhileItsLeaseHolds) {
  sys_.connect_errno = ECONNREFUSED;  // no network: each start ends at once
  EngineParams p = OneSecondAt100PerSecond();
  p.leased = true;
  EngineSnapshot never = RunToEnd(p, sys_, clock_);
  EXPECT_EQ(never.Total().attempted, 0u);
  EXPECT_EQ(never.late_starts, 100u);

  // Leased for the first half second: connections 0..49 (due every 10 ms from the start).
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(p, sys_, clock_);
  ASSERT_TRUE(engine.ok()) << engine.status();
  (*engine)->ExtendLease(clock_.NowNanos() + 500'000'000 - 1);
  (*engine)->ExtendLease(clock_.NowNanos());  // a lease only grows
  (*engine)->Start();
  EngineSnapshot half = (*engine)->Wait();
  EXPECT_EQ(half.Total().attempted, 50u);
  EXPECT_EQ(half.Total().attempted + half.late_starts, 100u);
}

// The agent stopped (SIGSTOP) inside a connect() and resumed after its lease lapsed: the engine
// makes no further start, although its own duration has not ended.
TEST_F(EngineFaultTest, ALeaseThatLapsedWhileStoppedStartsNothingAfterTheResume) {
  sys_.connect_errno = ECONNREFUSED;
  sys_.stall_at_connect = 30;
  sys_.stall_nanos = 300'000'000;  // resumed at ~0.59 s, past the lease's 0.4 s
  EngineSnapshot s = RunLeased(OneSecondAt100PerSecond(), 400'000'000);
  EXPECT_EQ(s.Total().attempted, 30u);
  EXPECT_EQ(s.late_starts, 70u);
}

// Stopped between its socket() and its connect(), past the lease: the start ends as stopped and
// no connect() goes out (the last look before the SYN).
TEST_F(EngineFaultTest, AStartStoppedBeforeItsConnectSendsNoSynOnceTheLeaseLapsed) {
  sys_.connect_errno = ECONNREFUSED;
  sys_.stall_at_socket = 30;
  sys_.stall_nanos = 300'000'000;
  EngineSnapshot s = RunLeased(OneSecondAt100PerSecond(), 400'000'000);
  EXPECT_EQ(sys_.connects, 29u);
  EXPECT_EQ(s.Total().attempted, 30u);
  EXPECT_EQ(s.Total().failures_of(Phase::kStopped, 0), 1u);
}

// Stalled between its socket() and its connect() past the run's end (a busy host, bind()'s port
// search): no SYN goes out, and the start is late, like those the pacer skips, not a failure.
TEST_F(EngineFaultTest, AStartThatReachesItsConnectAfterTheEndIsLateNotFailed) {
  sys_.connect_errno = ECONNREFUSED;
  sys_.stall_at_socket = 100;  // the last start of the second
  sys_.stall_nanos = 50'000'000;
  EngineSnapshot s = RunToEnd(OneSecondAt100PerSecond(), sys_, clock_);
  EXPECT_EQ(sys_.connects, 99u);
  EXPECT_EQ(s.Total().attempted, 99u);
  EXPECT_EQ(s.Total().failed(), 99u);
  EXPECT_EQ(s.Total().failures_of(Phase::kStopped, 0), 0u);
  EXPECT_EQ(s.late_starts, 1u);
}

// Without a lease (churnlab-churn on its own) the run's end alone bounds the engine.
TEST_F(EngineFaultTest, AnEngineWithoutALeaseIgnoresLeases) {
  sys_.connect_errno = ECONNREFUSED;
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      Engine::Create(OneSecondAt100PerSecond(), sys_, clock_);
  ASSERT_TRUE(engine.ok()) << engine.status();
  (*engine)->ExtendLease(0);
  (*engine)->Start();
  EXPECT_EQ((*engine)->Wait().Total().attempted, 100u);
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
  EXPECT_EQ(SourceName(s.sources[0].source), "127.0.0.1");
  EXPECT_EQ(SourceName(s.sources[1].source), "127.0.0.2");
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

// Bind mode bind-any binds every socket to the wildcard of the targets' family, port 0, and the
// failures count under the one source the kernel chooses ("auto").
TEST_F(EngineFaultTest, BindAnyBindsTheWildcard) {
  sys_.bind_errno = EADDRINUSE;
  EngineParams p = OneSecondAt100PerSecond();
  p.bind_mode = BindMode::kBindAny;
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  EXPECT_EQ(sys_.binds, 100u);
  EXPECT_EQ(sys_.last_bind, "0.0.0.0:0");
  ASSERT_EQ(s.sources.size(), 1u);
  EXPECT_EQ(SourceName(s.sources[0].source), "auto");
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
  p.connect_timeout = absl::Hours(1);
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
  sys_.connect_hangs = true;
  EngineParams p = OneSecondAt100PerSecond();
  p.rate = 0;
  p.concurrency = 8;
  p.max_connections = 20;
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  // 8 at once, 8 more when they time out at 200 ms, the last 4 at 400 ms.
  EXPECT_EQ(s.Total().attempted, 20u);
  EXPECT_EQ(s.Total().failures_of(Phase::kConnectTimeout, ETIMEDOUT), 20u);
  EXPECT_EQ(s.elapsed_nanos, 600'000'000);
}

// The hard bound: a connect() that spends milliseconds searching an exhausted port range cannot
// push load past the end. Every scheduled start is made, skipped as late or missed: none is lost.
TEST_F(EngineFaultTest, SlowFailingConnectsNeverRunPastTheEnd) {
  sys_.connect_errno = EADDRNOTAVAIL;
  sys_.connect_nanos = 3'000'000;
  EngineParams p = OneSecondAt100PerSecond();
  p.rate = 2000;
  int64_t start = clock_.NowNanos();
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  OutcomeCounts t = s.Total();
  EXPECT_LT(sys_.last_connect_at, start + 1'000'000'000);
  EXPECT_LE(s.elapsed_nanos, 1'000'000'000 + 3'000'000);
  EXPECT_EQ(t.attempted, sys_.connects);
  EXPECT_LE(t.attempted, 1000u / 3 + 1);  // one connect() per 3 ms is all the kernel allowed
  EXPECT_EQ(t.attempted + s.missed_starts + s.late_starts, 2000u);
  EXPECT_GT(s.late_starts, 1000u);
  EXPECT_EQ(s.connect_call.count(), t.attempted);
  EXPECT_GE(s.connect_call.Percentile(50), 3'000'000);
  EXPECT_LE(s.start_lateness.max(), 200'000'000);  // never later than the connect timeout
}

// churnlab-churn --rate=1000000 --duration=1s --max-in-flight=5 against an exhausted source.
TEST_F(EngineFaultTest, AMillionPerSecondIntoAnExhaustedSourceEndsOnTime) {
  sys_.connect_errno = EADDRNOTAVAIL;
  sys_.connect_nanos = 140'000;
  EngineParams p = OneSecondAt100PerSecond();
  p.rate = 1'000'000;
  p.max_in_flight = 5;
  int64_t start = clock_.NowNanos();
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  EXPECT_LT(sys_.last_connect_at, start + 1'000'000'000);
  EXPECT_LE(s.elapsed_nanos, 1'001'000'000);
  EXPECT_EQ(s.Total().attempted + s.missed_starts + s.late_starts, 1'000'000u);
}

// An agent stopped (SIGSTOP) for 10 s does not fire the starts it missed when it resumes: those
// due more than the connect timeout ago are counted, the rest made, late, within the limit.
TEST_F(EngineFaultTest, AStoppedProcessDoesNotCatchUpOnResume) {
  sys_.connect_errno = ECONNREFUSED;
  sys_.stall_at_connect = 50;
  sys_.stall_nanos = 10'000'000'000;
  EngineParams p = OneSecondAt100PerSecond();
  p.duration = absl::Seconds(20);
  p.connect_timeout = absl::Seconds(1);
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  OutcomeCounts t = s.Total();
  EXPECT_EQ(t.attempted + s.missed_starts + s.late_starts, 2000u);
  // Resumed at 10.49 s: the starts due from 0.5 s to 9.49 s are skipped; those of the last
  // second before the resume are made late (at most 1 s), the rest on time.
  EXPECT_NEAR(static_cast<double>(s.late_starts), 900, 2);
  EXPECT_LE(s.start_lateness.max(), 1'000'000'000);
  EXPECT_GE(s.loop_lag.max(), 10'000'000'000);
}

// A loop busy in connect() for longer than the connect timeout must not call handshakes that the
// kernel completed meanwhile timeouts: it looks at ready events before it judges a deadline.
TEST_F(EngineFaultTest, AStalledLoopDoesNotInventConnectTimeouts) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 1024), 0);  // the kernel completes handshakes; nobody accepts
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  sys_.connect_nanos = 150'000'000;  // each connect() outlasts the 100 ms connect timeout
  EngineParams p = OneSecondAt100PerSecond();
  p.targets = {*SocketAddress::ParseIpPort(absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)))};
  p.connect_timeout = absl::Milliseconds(100);
  p.io_timeout = absl::Milliseconds(100);
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  close(listener);
  OutcomeCounts t = s.Total();
  EXPECT_GT(t.attempted, 3u);
  EXPECT_EQ(t.failures_of(Phase::kConnectTimeout, ETIMEDOUT), 0u);
  EXPECT_EQ(s.connect_latency.count(), t.attempted);
  EXPECT_GE(s.loop_lag.max(), 150'000'000);
}

// An agent's --max-rate holds for the closed model too: its starts are paced under the cap,
// however fast connections end.
TEST_F(EngineFaultTest, ClosedModelStaysUnderTheRateCap) {
  sys_.connect_hangs = true;
  EngineParams p = OneSecondAt100PerSecond();
  p.rate = 0;
  p.concurrency = 100;
  p.connect_timeout = absl::Milliseconds(10);  // 10,000 a second without the cap
  p.max_rate = 50;
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  EXPECT_GE(s.Total().attempted, 49u);
  EXPECT_LE(s.Total().attempted, 50u);
}

TEST(EngineCreateTest, AnOpenModelRateAboveTheCapIsRefused) {
  EngineParams p = OneSecondAt100PerSecond();
  p.max_rate = 50;
  absl::Status s = ValidateEngineParams(p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("above the cap of 50"), absl::string_view::npos) << s;
}

// Closed model: a failure that returns at once (EMFILE past the fd limit) is retried at a
// bounded pace, not in a spin; every try is an attempt.
TEST_F(EngineFaultTest, ClosedModelDoesNotSpinOnImmediateFailures) {
  sys_.socket_errno = EMFILE;
  EngineParams p = OneSecondAt100PerSecond();
  p.rate = 0;
  p.concurrency = 100;
  EngineSnapshot s = RunToEnd(p, sys_, clock_);
  OutcomeCounts t = s.Total();
  // Hold-backs of 1, 2, 4, ... 64 ms, then 100 ms each: about 16 tries in a second.
  EXPECT_GE(t.attempted, 10u);
  EXPECT_LE(t.attempted, 20u);
  EXPECT_EQ(t.failures_of(Phase::kSocket, EMFILE), t.attempted);
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
  // bind-any binds the wildcard: no source IP, and the kernel's choice counts as one source.
  p.bind_mode = BindMode::kBindAny;
  EXPECT_TRUE(ValidateEngineParams(p).ok());
  p.source_ips = {*SocketAddress::ParseIp("127.0.0.1")};
  EXPECT_NE(ValidateEngineParams(p).message().find("bind-any binds no source IP"),
            absl::string_view::npos);
  EXPECT_EQ(ParseBindMode("bind-any").value_or(BindMode::kNone), BindMode::kBindAny);
  EXPECT_EQ(BindModeName(BindMode::kBindAny), "bind-any");
}

}  // namespace
}  // namespace churnlab
