// The engine against a real churnlab-target process on loopback: every protocol and close policy,
// counts that add up on both sides, and where TIME_WAIT lands, read from the kernel.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "agent/engine.h"
#include "gtest/gtest.h"
#include "host/tcp_socket_table.h"
#include "tests/support/target_process.h"

namespace churnlab {
namespace {

using testing::StartTarget;

using testing::TargetProcess;

struct StateCounts {
  int client_side = 0;  // sockets whose remote end is the target's port
  int server_side = 0;  // sockets on the target's own port
};

StateCounts CountState(TcpState state, const SocketAddress& target) {
  StateCounts out;
  absl::StatusOr<std::vector<TcpSocketInfo>> sockets = DumpTcpSockets(AF_INET);
  if (!sockets.ok()) {
    ADD_FAILURE() << sockets.status();
    return out;
  }
  for (const TcpSocketInfo& s : *sockets) {
    if (s.state != state) continue;
    if (s.remote == target) ++out.client_side;
    if (s.local == target) ++out.server_side;
  }
  return out;
}

// A connection's close finishes in the kernel after close() returns: the FIN of the side that
// closed last may still be queued (softirq) when the engine stops, so its peer sits in FIN_WAIT_2
// for a moment before TIME_WAIT. Wait, bounded, until no socket of the target is between states.
void WaitForClosesToFinish(const SocketAddress& target) {
  for (int i = 0; i < 100; ++i) {
    int closing = 0;
    for (TcpState state :
         {TcpState::kFinWait1, TcpState::kFinWait2, TcpState::kClosing, TcpState::kLastAck}) {
      StateCounts n = CountState(state, target);
      closing += n.client_side + n.server_side;
    }
    if (closing == 0) return;
    usleep(50'000);
  }
}

// Each target gets a loopback address of its own, so sockets left in TIME_WAIT by earlier tests
// (which may hold the same port number) are never counted as this test's.
absl::StatusOr<TargetProcess> StartTargetOnFreshIp(const std::vector<std::string>& flags) {
  static int next = 1;
  std::string ip = absl::StrCat("127.77.", getpid() % 250, ".", next++);
  return StartTarget(flags, {}, ip);
}

EngineParams LoadAgainst(const SocketAddress& target, Protocol protocol, ClosePolicy close) {
  EngineParams p;
  p.targets = {target};
  p.protocol = protocol;
  p.close_policy = close;
  p.rate = 400;
  p.duration = absl::Seconds(1);
  p.requests_per_connection = 2;
  p.threads = 2;
  return p;
}

// How many connections `s` started of the `due` its rate scheduled: every scheduled start is made
// or counted (a busy machine may make the engine skip a start it came to late, or after the
// end), and at least three quarters are made.
uint64_t Started(const EngineSnapshot& s, uint64_t due) {
  const uint64_t started = s.Total().attempted;
  EXPECT_EQ(started + s.late_starts + s.missed_starts, due);
  EXPECT_GE(started, due * 3 / 4);
  return started;
}

EngineSnapshot RunEngine(const EngineParams& params) {
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(params);
  if (!engine.ok()) {
    ADD_FAILURE() << engine.status();
    return EngineSnapshot{};
  }
  (*engine)->Start();
  return (*engine)->Wait();
}

struct Case {
  Protocol protocol;
  ClosePolicy policy;
  const char* target_close;     // the target's --close
  bool client_keeps_time_wait;  // the side that closes first keeps it
  bool server_keeps_time_wait;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << ProtocolName(c.protocol) << "/" << ClosePolicyName(c.policy);
}

class LoopbackChurnTest : public ::testing::TestWithParam<Case> {};

TEST_P(LoopbackChurnTest, CountsAgreeAndTimeWaitLandsOnTheSideThatClosedFirst) {
  const Case& c = GetParam();
  absl::StatusOr<TargetProcess> target =
      StartTargetOnFreshIp({absl::StrCat("--protocol=", ProtocolName(c.protocol)),
                            absl::StrCat("--close=", c.target_close)});
  ASSERT_TRUE(target.ok()) << target.status();
  EngineParams params = LoadAgainst(target->address, c.protocol, c.policy);
  EngineSnapshot s = RunEngine(params);
  OutcomeCounts t = s.Total();
  WaitForClosesToFinish(target->address);
  StateCounts time_wait = CountState(TcpState::kTimeWait, target->address);
  std::map<std::string, uint64_t> served = target->StopAndReadCounters();

  Started(s, 400);
  EXPECT_EQ(t.attempted, t.succeeded + t.failed());
  EXPECT_EQ(t.failed(), 0u) << "failures seen";
  EXPECT_EQ(t.requests, 2 * t.succeeded);
  EXPECT_EQ(served["accepted"], t.attempted);
  EXPECT_EQ(served["answered"], t.requests);

  // Every connection leaves at most one TIME_WAIT, on the side that sent the first FIN.
  if (c.client_keeps_time_wait) {
    EXPECT_GE(time_wait.client_side, 0.95 * t.succeeded);
  } else {
    EXPECT_EQ(time_wait.client_side, 0);
  }
  if (c.server_keeps_time_wait) {
    EXPECT_GE(time_wait.server_side, 0.95 * t.succeeded);
  } else {
    EXPECT_EQ(time_wait.server_side, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryProtocolAndClosePolicy, LoopbackChurnTest,
    ::testing::Values(
        Case{Protocol::kCounter, ClosePolicy::kClientFin, "client", true, false},
        Case{Protocol::kCounter, ClosePolicy::kRst, "client", false, false},
        // Counter has no way to ask for a close; the server closing after each answer would
        // end a 2-request connection early, so server-fin uses one request here (below).
        Case{Protocol::kHttp, ClosePolicy::kClientFin, "client", true, false},
        Case{Protocol::kHttp, ClosePolicy::kRst, "client", false, false},
        // The last request says "Connection: close" and the target honours it.
        Case{Protocol::kHttp, ClosePolicy::kServerFin, "client", false, true}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string name =
          absl::StrCat(ProtocolName(info.param.protocol), "_", ClosePolicyName(info.param.policy));
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

TEST(LoopbackTargetTest, CounterServerFinWithATargetThatClosesFirst) {
  absl::StatusOr<TargetProcess> target =
      StartTargetOnFreshIp({"--protocol=counter", "--close=server"});
  ASSERT_TRUE(target.ok()) << target.status();
  EngineParams params = LoadAgainst(target->address, Protocol::kCounter, ClosePolicy::kServerFin);
  params.requests_per_connection = 1;
  EngineSnapshot s = RunEngine(params);
  WaitForClosesToFinish(target->address);
  StateCounts time_wait = CountState(TcpState::kTimeWait, target->address);
  std::map<std::string, uint64_t> served = target->StopAndReadCounters();
  // Every connection started succeeds, and the server closed each.
  EXPECT_EQ(s.Total().succeeded, Started(s, 400));
  EXPECT_EQ(served["closed_by_server"], s.Total().succeeded);
  EXPECT_GE(time_wait.server_side, static_cast<int>(s.Total().succeeded) - 20);
  EXPECT_EQ(time_wait.client_side, 0);
}

// A target of several server processes (SO_REUSEPORT) counts every one's connections: its
// last line (and its observer) sums them, not only its first process's share.
TEST(LoopbackTargetTest, EveryServerProcessIsCounted) {
  absl::StatusOr<TargetProcess> target =
      StartTargetOnFreshIp({"--protocol=counter", "--close=client", "--processes=3"});
  ASSERT_TRUE(target.ok()) << target.status();
  EngineParams params = LoadAgainst(target->address, Protocol::kCounter, ClosePolicy::kClientFin);
  EngineSnapshot s = RunEngine(params);
  OutcomeCounts t = s.Total();
  WaitForClosesToFinish(target->address);
  std::map<std::string, uint64_t> served = target->StopAndReadCounters();
  EXPECT_EQ(t.succeeded, Started(s, 400));
  EXPECT_EQ(served["accepted"], t.attempted);
  EXPECT_EQ(served["answered"], t.requests);
}

TEST(LoopbackTargetTest, NothingListeningMeansConnectionRefused) {
  // Find a free port by listening on it, then close the listener.
  absl::StatusOr<TargetProcess> target = StartTargetOnFreshIp({});
  ASSERT_TRUE(target.ok()) << target.status();
  SocketAddress address = target->address;
  target->StopAndReadCounters();
  EngineParams params = LoadAgainst(address, Protocol::kCounter, ClosePolicy::kClientFin);
  EngineSnapshot s = RunEngine(params);
  // Every connection started is refused.
  const uint64_t started = Started(s, 400);
  EXPECT_EQ(s.Total().failures_of(Phase::kConnect, ECONNREFUSED), started);
  EXPECT_EQ(s.Total().failed(), started);
}

TEST(LoopbackTargetTest, SlowAnswersEndAsResponseTimeouts) {
  absl::StatusOr<TargetProcess> target = StartTargetOnFreshIp({"--delay=300ms..400ms"});
  ASSERT_TRUE(target.ok()) << target.status();
  EngineParams params = LoadAgainst(target->address, Protocol::kCounter, ClosePolicy::kClientFin);
  params.rate = 50;
  params.io_timeout = absl::Milliseconds(100);
  EngineSnapshot s = RunEngine(params);
  target->StopAndReadCounters();
  // Every connection started times out waiting for its answer.
  EXPECT_EQ(s.Total().failures_of(Phase::kResponseTimeout, ETIMEDOUT), Started(s, 50));
  EXPECT_EQ(s.Total().succeeded, 0u);
}

TEST(LoopbackTargetTest, DelaysWithinTheTimeoutShowInTheLatency) {
  absl::StatusOr<TargetProcess> target = StartTargetOnFreshIp({"--delay=20ms..40ms"});
  ASSERT_TRUE(target.ok()) << target.status();
  EngineParams params = LoadAgainst(target->address, Protocol::kCounter, ClosePolicy::kClientFin);
  params.rate = 100;
  params.requests_per_connection = 1;
  EngineSnapshot s = RunEngine(params);
  target->StopAndReadCounters();
  // Every connection made succeeds (CI once made 99 of the 100, one start skipped as late).
  const uint64_t started = Started(s, 100);
  EXPECT_GE(started, 90u);
  EXPECT_EQ(s.Total().succeeded, started);
  EXPECT_GE(s.connection_latency.Percentile(1), 19'000'000);
  EXPECT_LE(s.connection_latency.Percentile(50), 60'000'000);
}

TEST(LoopbackTargetTest, ATargetThatNeverClosesPilesUpCloseWait) {
  absl::StatusOr<TargetProcess> target =
      StartTargetOnFreshIp({"--close=never", "--max-leaked=150"});
  ASSERT_TRUE(target.ok()) << target.status();
  EngineParams params = LoadAgainst(target->address, Protocol::kCounter, ClosePolicy::kClientFin);
  params.rate = 200;
  EngineSnapshot s = RunEngine(params);
  StateCounts close_wait = CountState(TcpState::kCloseWait, target->address);
  StateCounts fin_wait2 = CountState(TcpState::kFinWait2, target->address);
  std::map<std::string, uint64_t> served = target->StopAndReadCounters();
  EXPECT_EQ(s.Total().succeeded, Started(s, 200));
  ASSERT_GT(s.Total().succeeded, 150u);
  // The cap holds: 150 kept in CLOSE_WAIT, the rest closed.
  EXPECT_EQ(served["leaked"], 150u);
  EXPECT_EQ(served["leak_cap_closes"], s.Total().succeeded - 150);
  EXPECT_EQ(close_wait.server_side, 150);
  // The client's side waits in FIN_WAIT2 for a FIN that never comes (a few may still be in
  // FIN_WAIT1 at the moment of the dump).
  EXPECT_GE(fin_wait2.client_side, 135);
}

TEST(LoopbackTargetTest, AFullBacklogShowsAsTimeouts) {
  // One accept a second and a backlog of 1: nearly every SYN or request is left unanswered.
  absl::StatusOr<TargetProcess> target =
      StartTargetOnFreshIp({"--backlog=1", "--accept-rate=1", "--threads=1"});
  ASSERT_TRUE(target.ok()) << target.status();
  EngineParams params = LoadAgainst(target->address, Protocol::kCounter, ClosePolicy::kClientFin);
  params.rate = 100;
  params.threads = 1;
  params.connect_timeout = absl::Milliseconds(300);
  params.io_timeout = absl::Milliseconds(300);
  EngineSnapshot s = RunEngine(params);
  target->StopAndReadCounters();
  OutcomeCounts t = s.Total();
  EXPECT_EQ(t.attempted, t.succeeded + t.failed());
  EXPECT_GE(t.failures_of(Phase::kConnectTimeout, ETIMEDOUT) +
                t.failures_of(Phase::kResponseTimeout, ETIMEDOUT),
            80u);
  EXPECT_LE(t.succeeded, 10u);
}

}  // namespace
}  // namespace churnlab
