// A fake coordinator for the agent's and observer's side of the link (host/coordinator_session.h)
// over an in-process gRPC channel, and a sink for a session's log lines.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "churnlab/v1/agent.grpc.pb.h"

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
    }
    std::lock_guard<std::mutex> lock(mu_);
    stream_ = nullptr;
    context_ = nullptr;
    cv_.notify_all();
    return grpc::Status::OK;
  }

  // False when no agent is attached.
  bool Send(const v1::CoordinatorMessage& message) {
    std::lock_guard<std::mutex> lock(mu_);
    return stream_ != nullptr && stream_->Write(message);
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

}  // namespace churnlab::testing
