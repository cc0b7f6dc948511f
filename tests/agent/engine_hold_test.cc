// The engine's hold (spec `hold`): connections stay open after their requests for the hold, then
// close by the close policy; the run's end closes those still held. Simulated time against an
// in-process target on loopback, so an hour's hold takes a fraction of a second.
#include <errno.h>

#include <thread>

#include "absl/strings/match.h"
#include "agent/engine.h"
#include "agent/outcome.h"
#include "gtest/gtest.h"
#include "target/target_server.h"
#include "tests/support/fault_sys_calls.h"

namespace churnlab {
namespace {

using testing::FakeClock;
using testing::FaultSysCalls;

constexpr int kConnections = 20;

class EngineHoldTest : public ::testing::Test {
 protected:
  void StartTarget(CloseMode close) {
    TargetParams t;
    t.listen = {*SocketAddress::ParseIpPort("127.0.0.1:0")};
    t.close_mode = close;
    t.threads = 1;
    absl::StatusOr<std::unique_ptr<TargetServer>> server = TargetServer::Create(t);
    ASSERT_TRUE(server.ok()) << server.status();
    target_ = std::move(*server);
    target_->Start();
  }

  // kConnections at once (closed model), each started once, held for an hour of simulated time.
  EngineParams HeldLoad() const {
    EngineParams p;
    p.targets = {target_->addresses()[0]};
    p.concurrency = kConnections;
    p.max_connections = kConnections;
    p.duration = absl::Seconds(10);
    p.connect_timeout = absl::Hours(1);
    p.io_timeout = absl::Hours(1);
    p.hold = absl::Hours(1);
    return p;
  }

  std::unique_ptr<Engine> StartEngine(const EngineParams& p) {
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(p, sys_, clock_);
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    (*engine)->Start();
    return std::move(*engine);
  }

  FakeClock clock_;
  FaultSysCalls sys_{clock_};
  std::unique_ptr<TargetServer> target_;
};

TEST_F(EngineHoldTest, HeldConnectionsCloseAfterTheHoldAndTheRunEndsByItself) {
  StartTarget(CloseMode::kClient);
  std::unique_ptr<Engine> engine = StartEngine(HeldLoad());
  ASSERT_NE(engine, nullptr);
  EngineSnapshot s = engine->Wait();
  OutcomeCounts t = s.Total();
  EXPECT_EQ(t.attempted, uint64_t{kConnections});
  EXPECT_EQ(t.succeeded, uint64_t{kConnections});
  EXPECT_EQ(t.requests, uint64_t{kConnections});
  EXPECT_EQ(sys_.connects, uint64_t{kConnections});  // none replaced while held
  // Every connection lived at least the hold: all twenty were open together.
  EXPECT_GE(s.connection_latency.min(), absl::ToInt64Nanoseconds(absl::Hours(1)));
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_EQ(s.held, 0u);
  // The run ended by itself, within its bound: duration + drain (which includes the hold).
  EXPECT_LE(s.elapsed_nanos, absl::ToInt64Nanoseconds(absl::Seconds(10) + DrainBound(HeldLoad())));
}

TEST_F(EngineHoldTest, StoppingClosesHeldConnectionsAsSucceeded) {
  StartTarget(CloseMode::kClient);
  EngineParams p = HeldLoad();
  p.hold = absl::Hours(24);
  p.close_policy = ClosePolicy::kRst;
  std::unique_ptr<Engine> engine = StartEngine(p);
  ASSERT_NE(engine, nullptr);
  while (engine->Snapshot().held < kConnections) std::this_thread::yield();
  EXPECT_EQ(engine->Snapshot().in_flight, uint64_t{kConnections});
  engine->Stop();
  EngineSnapshot s = engine->Wait();
  EXPECT_EQ(s.Total().succeeded, uint64_t{kConnections});
  EXPECT_EQ(s.Total().failed(), 0u);
  EXPECT_EQ(s.held, 0u);
}

TEST_F(EngineHoldTest, AServerThatClosesAHeldConnectionFailsIt) {
  StartTarget(CloseMode::kServer);  // closes right after each answer
  std::unique_ptr<Engine> engine = StartEngine(HeldLoad());
  ASSERT_NE(engine, nullptr);
  EngineSnapshot s = engine->Wait();
  EXPECT_EQ(s.Total().requests, uint64_t{kConnections});
  EXPECT_EQ(s.Total().failures_of(Phase::kRead, 0), uint64_t{kConnections});
  EXPECT_EQ(OutcomeCodeName(Phase::kRead, 0), "EOF");
  EXPECT_EQ(s.Total().succeeded, 0u);
}

TEST(EngineHoldParamsTest, HoldUnderServerFinIsRefusedNamingTheField) {
  EngineParams p;
  p.targets = {*SocketAddress::ParseIpPort("127.0.0.1:9")};
  p.concurrency = 1;
  p.hold = absl::Seconds(1);
  p.close_policy = ClosePolicy::kServerFin;
  absl::Status s = ValidateEngineParams(p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(s.message(), "hold")) << s;
  p.hold = -absl::Seconds(1);
  p.close_policy = ClosePolicy::kClientFin;
  EXPECT_TRUE(absl::StartsWith(ValidateEngineParams(p).message(), "hold"));
}

}  // namespace
}  // namespace churnlab
