// A fake coordinator for the agent's and observer's side of the link (host/coordinator_session.h)
// over an in-process gRPC channel, a sink for a session's log lines, and both served together
// with a clock the test moves by hand (InProcessCoordinator).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "churnlab/v1/agent.grpc.pb.h"
#include "host/coordinator_session.h"

namespace churnlab::testing {

// Takes one agent's stream at a time and keeps everything it sends.
class FakeCoordinator final : public v1::AgentGateway::Service {
 public:
  using Stream = grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::AgentMessage>;

  grpc::Status Attach(grpc::ServerContext* context, Stream* stream) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++attaches_;
      if (!refusal_.ok()) {
        grpc::Status refusal = refusal_;
        refusal_ = grpc::Status::OK;
        cv_.notify_all();
        return refusal;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stream_ = stream;
      context_ = context;
      cv_.notify_all();
    }
    v1::AgentMessage message;
    while (stream->Read(&message)) {
      std::lock_guard<std::mutex> lock(mu_);
      received_.push_back(message);
      cv_.notify_all();
      if (message.has_ping() && answer_pings_ && answers_left_ != 0) {
        // As the coordinator does: the clock echoed, and the run it counts the agent in.
        if (answers_left_ > 0) --answers_left_;
        v1::CoordinatorMessage lease;
        lease.mutable_lease()->set_agent_clock_nanos(message.ping().agent_clock_nanos() +
                                                     lease_clock_skew_nanos_);
        lease.mutable_lease()->set_run_id(fixed_lease_run_.value_or(leased_run_));
        lease.mutable_lease()->mutable_duration()->set_seconds(lease_seconds_);
        stream->Write(lease);
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    stream_ = nullptr;
    context_ = nullptr;
    cv_.notify_all();
    return grpc::Status::OK;
  }

  // False when no agent is attached. An assignment's run is the one pings are answered for.
  bool Send(const v1::CoordinatorMessage& message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (message.has_assign()) leased_run_ = message.assign().run_id();
    return stream_ != nullptr && stream_->Write(message);
  }
  // Whether pings are answered (by default they are), as a coordinator that is stopped, or whose
  // answers are lost, would not.
  void AnswerPings(bool answer) {
    std::lock_guard<std::mutex> lock(mu_);
    answer_pings_ = answer;
  }
  // A hostile or broken coordinator's leases: the echoed clock moved by `skew_nanos`, `seconds`
  // long, and only the next `answers` pings answered (-1: all).
  void OddLeases(int64_t skew_nanos, int64_t seconds, int answers) {
    std::lock_guard<std::mutex> lock(mu_);
    lease_clock_skew_nanos_ = skew_nanos;
    lease_seconds_ = seconds;
    answers_left_ = answers;
  }
  // Answers pings for `run_id` from now on, whatever is assigned; nullopt: for the last run
  // assigned, as by default.
  void LeaseFor(std::optional<std::string> run_id) {
    std::lock_guard<std::mutex> lock(mu_);
    fixed_lease_run_ = std::move(run_id);
  }
  // The next attachment ends at once with `status` (ALREADY_EXISTS: a name already taken).
  void RefuseNext(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    refusal_ = std::move(status);
  }
  // Cuts the agent's stream, as a lost coordinator would.
  void Cut() {
    std::lock_guard<std::mutex> lock(mu_);
    if (context_ != nullptr) context_->TryCancel();
  }
  // Waits (up to 20 s, a bound for a broken build, not a timing claim) until `done` holds.
  bool WaitUntil(const std::function<bool(const std::deque<v1::AgentMessage>&, int)>& done) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return done(received_, attaches_); });
  }
  // Attachments begun so far, refused ones too.
  int attaches() {
    std::lock_guard<std::mutex> lock(mu_);
    return attaches_;
  }
  // The first message the test's predicate picks, once it has come.
  std::optional<v1::AgentMessage> WaitFor(
      const std::function<bool(const v1::AgentMessage&)>& pick) {
    std::optional<v1::AgentMessage> found;
    WaitUntil([&](const std::deque<v1::AgentMessage>& messages, int) {
      for (const v1::AgentMessage& m : messages) {
        if (pick(m)) {
          found = m;
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Stream* stream_ = nullptr;
  grpc::ServerContext* context_ = nullptr;
  int attaches_ = 0;  // attachments begun, refused ones too
  grpc::Status refusal_;
  std::deque<v1::AgentMessage> received_;
  bool answer_pings_ = true;
  std::string leased_run_;  // the last run assigned
  std::optional<std::string> fixed_lease_run_;
  int64_t lease_clock_skew_nanos_ = 0;
  int64_t lease_seconds_ = 3;
  int answers_left_ = -1;
};

// The session's log lines, kept so a test can wait for one.
class LogLines {
 public:
  void Add(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(line);
    cv_.notify_all();
  }
  // Waits (up to 20 s, a bound for a broken build) for the `n`th line that contains `part`.
  bool WaitFor(const std::string& part, int n = 1) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      int seen = 0;
      for (const std::string& line : lines_) seen += line.find(part) != std::string::npos;
      return seen >= n;
    });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

// A fake coordinator served in-process, with what a session under test needs beside it: the
// channel to it, a sink for the session's lines and a clock that only Advance() moves.
class InProcessCoordinator {
 public:
  InProcessCoordinator() {
    grpc::ServerBuilder builder;
    builder.RegisterService(&coordinator);
    server_ = builder.BuildAndStart();
  }
  // Shut the session down first: its stream ends here.
  ~InProcessCoordinator() {
    if (server_ != nullptr) server_->Shutdown();
  }
  bool serving() const { return server_ != nullptr; }

  // A session's options toward it: "a1" on "test-host", a tick every 50 ms, and redial waits of
  // hours (1 h doubling to 4 h), which no test could sit through: only Advance() ends them.
  CoordinatorSession::Options SessionOptions() {
    CoordinatorSession::Options o;
    o.channel = server_->InProcessChannel(grpc::ChannelArguments());
    o.coordinator = "in-process";
    o.hello.set_name("a1");
    o.hello.set_host("test-host");
    o.telemetry_interval = absl::Milliseconds(50);
    o.first_backoff = absl::Hours(1);
    o.max_backoff = absl::Hours(4);
    o.now = [this] {
      clock_reads_.fetch_add(1);
      return absl::FromUnixNanos(now_nanos_.load());
    };
    o.log = [this](const std::string& line) { log.Add(line); };
    return o;
  }
  void Advance(absl::Duration d) { now_nanos_.fetch_add(absl::ToInt64Nanoseconds(d)); }
  // How often the session has read its clock: a wait polls it.
  const std::atomic<int>& clock_reads() const { return clock_reads_; }

  FakeCoordinator coordinator;
  LogLines log;

 private:
  std::unique_ptr<grpc::Server> server_;
  std::atomic<int64_t> now_nanos_{absl::ToUnixNanos(absl::FromUnixSeconds(1'000'000))};
  std::atomic<int> clock_reads_{0};
};

}  // namespace churnlab::testing
