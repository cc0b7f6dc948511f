// The agent's and observer's side of the link, over an in-process gRPC channel to a fake
// coordinator: orders handed to the handler, ticks sent up, redials on the session's own clock,
// refusals, and hellos sent again only when the host's settings change.
#include "host/coordinator_session.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/fake_coordinator.h"

namespace churnlab {
namespace {

using testing::FakeCoordinator;
using testing::InProcessCoordinator;
using testing::LogLines;

// Keeps what the session hands it; sends a telemetry message on each tick when asked.
class RecordingHandler final : public CoordinatorSession::Handler {
 public:
  void OnAssign(const v1::Shard& shard) override { Add("assign " + shard.run_id()); }
  void OnAdjust(const v1::Adjust& adjust) override { Add("adjust " + adjust.run_id()); }
  void OnStop(const v1::Stop& stop) override { Add("stop " + stop.run_id()); }
  void OnDetached() override { Add("detached"); }
  std::optional<v1::ShardTelemetry> OnTick() override {
    if (!tick_telemetry.load()) return std::nullopt;
    v1::ShardTelemetry telemetry;
    telemetry.set_run_id("r-tick");
    return telemetry;
  }
  bool ShouldLeave() override { return leave.load(); }

  std::vector<std::string> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  // Waits (up to 20 s, a bound for a broken build) until `event` has happened.
  bool WaitFor(const std::string& event) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      return std::find(events_.begin(), events_.end(), event) != events_.end();
    });
  }

  std::atomic<bool> tick_telemetry{false};
  std::atomic<bool> leave{false};

 private:
  void Add(std::string event) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(event));
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
};

class CoordinatorSessionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(link_.serving()); }
  void TearDown() override {
    if (session_) session_->Shutdown();
    if (served_.valid()) served_.wait();
    session_.reset();
  }

  CoordinatorSession::Options Options() { return link_.SessionOptions(); }
  // Starts the session; true once the fake coordinator has its first message (the hello).
  [[nodiscard]] bool Start(CoordinatorSession::Options options) {
    session_ = std::make_unique<CoordinatorSession>(std::move(options), &handler_);
    served_ = std::async(std::launch::async, [this] { session_->Run(); });
    return coordinator_.WaitUntil([](const auto& m, int) { return !m.empty(); });
  }
  void Advance(absl::Duration d) { link_.Advance(d); }
  int attaches() { return coordinator_.attaches(); }
  // Waits (up to 20 s, a bound for a broken build) until `counter` has gone up by `n`.
  static bool WaitForMore(const std::atomic<int>& counter, int n) {
    const int from = counter.load();
    for (int i = 0; i < 20000 && counter.load() < from + n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return counter.load() >= from + n;
  }

  InProcessCoordinator link_;  // outlives the session
  FakeCoordinator& coordinator_ = link_.coordinator;
  LogLines& log_ = link_.log;
  RecordingHandler handler_;
  std::unique_ptr<CoordinatorSession> session_;
  std::future<void> served_;
  // What the host's settings read as, for refresh_settings (members: the session's ticker may
  // read them until TearDown).
  std::atomic<int64_t> fd_limit_{1024};
  std::atomic<uint64_t> memory_{800 << 20};
  std::atomic<int> refreshes_{0};
};

TEST_F(CoordinatorSessionTest, HandsEachOrderToItsHandlerAndTellsItWhenTheStreamEnds) {
  ASSERT_TRUE(Start(Options()));
  std::optional<v1::AgentMessage> hello =
      coordinator_.WaitFor([](const v1::AgentMessage& m) { return m.has_hello(); });
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->hello().name(), "a1");
  v1::CoordinatorMessage assign, adjust, stop;
  assign.mutable_assign()->set_run_id("r1");
  adjust.mutable_adjust()->set_run_id("r1");
  stop.mutable_stop()->set_run_id("r1");
  for (const v1::CoordinatorMessage* m : {&assign, &adjust, &stop}) {
    ASSERT_TRUE(coordinator_.Send(*m));
  }
  ASSERT_TRUE(handler_.WaitFor("stop r1"));
  coordinator_.Cut();
  ASSERT_TRUE(handler_.WaitFor("detached"));
  EXPECT_EQ(handler_.events(),
            (std::vector<std::string>{"assign r1", "adjust r1", "stop r1", "detached"}));
}

TEST_F(CoordinatorSessionTest, SendsWhatItsHandlerHasOnEachTickAndLeavesWhenItSays) {
  handler_.tick_telemetry = true;
  ASSERT_TRUE(Start(Options()));
  ASSERT_TRUE(coordinator_.WaitUntil([](const std::deque<v1::AgentMessage>& messages, int) {
    return std::count_if(messages.begin(), messages.end(), [](const v1::AgentMessage& m) {
             return m.has_telemetry() && m.telemetry().run_id() == "r-tick";
           }) >= 2;
  }));
  handler_.leave = true;
  EXPECT_EQ(served_.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_TRUE(session_->shutting_down());
}

// A refusal (a name already taken) is logged as such, and the session tries again after its
// backoff: the other agent of that name may be gone by then.
TEST_F(CoordinatorSessionTest, ARefusalIsSaidAndRetriedAfterTheBackoff) {
  coordinator_.RefuseNext(grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "a1 is attached"));
  session_ = std::make_unique<CoordinatorSession>(Options(), &handler_);
  served_ = std::async(std::launch::async, [this] { session_->Run(); });
  ASSERT_TRUE(log_.WaitFor("the coordinator refused this agent: a1 is attached; retrying in 1h"));
  EXPECT_EQ(attaches(), 1);
  Advance(absl::Hours(1));
  ASSERT_TRUE(coordinator_.WaitFor([](const v1::AgentMessage& m) { return m.has_hello(); }));
  EXPECT_EQ(attaches(), 2);
}

// The redial waits double on the session's clock, up to max_backoff, and an attachment that
// lasted ten seconds earns the first, short one again. The waits are hours: only the test's
// clock can end them.
TEST_F(CoordinatorSessionTest, RedialsAfterBackoffsThatDoubleByItsOwnClock) {
  ASSERT_TRUE(Start(Options()));
  const absl::Duration waits[] = {absl::Hours(1), absl::Hours(2), absl::Hours(4), absl::Hours(4)};
  int expected = 1;
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(attaches(), expected);
    coordinator_.Cut();  // at once: the attachment lasted no time on the clock
    ASSERT_TRUE(log_.WaitFor("retrying in " + absl::FormatDuration(waits[i]), i == 3 ? 2 : 1))
        << "wait " << i;
    Advance(waits[i] - absl::Milliseconds(1));
    // A millisecond early by its clock: it has looked at the clock twice more and not redialled.
    ASSERT_TRUE(WaitForMore(link_.clock_reads(), 2));
    EXPECT_EQ(attaches(), expected) << "redialled before its " << waits[i] << " wait";
    Advance(absl::Milliseconds(1));
    ASSERT_TRUE(coordinator_.WaitUntil([&](const auto&, int n) { return n > expected; }));
    ++expected;
  }
  // Ten seconds attached (its clock was read before it dialled): the first wait again.
  Advance(absl::Seconds(11));
  coordinator_.Cut();
  ASSERT_TRUE(log_.WaitFor("retrying in 1h", 2));
  Advance(absl::Hours(1));
  ASSERT_TRUE(coordinator_.WaitUntil([&](const auto&, int n) { return n > expected; }));
}

// A new hello goes up when a setting changes or available memory moves by more than an eighth;
// memory's small moves, every second on a busy host, do not flood the coordinator with hellos.
TEST_F(CoordinatorSessionTest, SaysHelloAgainOnlyWhenASettingOrMemoryReallyChanged) {
  CoordinatorSession::Options options = Options();
  options.hello.set_mem_available_bytes(800 << 20);
  options.refresh_settings = [this](v1::Hello* hello) {
    hello->set_fd_limit(fd_limit_.load());
    hello->set_mem_available_bytes(memory_.load());
    refreshes_.fetch_add(1);
  };
  ASSERT_TRUE(Start(std::move(options)));
  auto hellos = [&] {
    int count = 0;
    coordinator_.WaitUntil([&](const std::deque<v1::AgentMessage>& messages, int) {
      for (const v1::AgentMessage& m : messages) count += m.has_hello();
      return true;
    });
    return count;
  };
  auto wait_for_hellos = [&](int n) {
    return coordinator_.WaitUntil([&](const std::deque<v1::AgentMessage>& messages, int) {
      return std::count_if(messages.begin(), messages.end(),
                           [](const v1::AgentMessage& m) { return m.has_hello(); }) >= n;
    });
  };
  // The first refresh differs from the hello (its fd limit was unset): one more hello.
  ASSERT_TRUE(wait_for_hellos(2));
  memory_ = (800 << 20) + (50 << 20);       // 6%: not worth a word
  ASSERT_TRUE(WaitForMore(refreshes_, 3));  // read on three ticks at least
  EXPECT_EQ(hellos(), 2) << "a hello for memory that moved 6%";
  memory_ = 901 << 20;  // past an eighth of 800 MiB: a hello
  ASSERT_TRUE(wait_for_hellos(3));
  ASSERT_TRUE(coordinator_.WaitFor([](const v1::AgentMessage& m) {
    return m.has_hello() && m.hello().mem_available_bytes() == 901u << 20;
  }));
  fd_limit_ = 4096;
  ASSERT_TRUE(wait_for_hellos(4));
  ASSERT_TRUE(WaitForMore(refreshes_, 2));
  EXPECT_EQ(hellos(), 4);
}

}  // namespace
}  // namespace churnlab
