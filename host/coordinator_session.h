// One process's link to the coordinator, for an agent and for a target that observes its host:
// dial, say hello, keep the hello current as the host's settings change, hand the coordinator's
// orders to a Handler, send messages up the stream, and redial with backoff when the coordinator
// goes away.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "churnlab/v1/agent.grpc.pb.h"
#include "common/clock.h"
#include "proto/grpc_link.h"

namespace churnlab {

class CoordinatorSession {
 public:
  // What the process does with its link. Calls come from the session's own threads (one reads
  // the stream, one ticks) and must not block for long.
  class Handler {
   public:
    virtual ~Handler() = default;
    // The coordinator's orders.
    virtual void OnAssign(const v1::Shard& shard) = 0;
    virtual void OnAdjust(const v1::Adjust& adjust) {}
    virtual void OnStop(const v1::Stop& stop) {}
    // The coordinator's answer to a Ping the process sent.
    virtual void OnLease(const v1::Lease& lease) {}
    // The stream ended, and every order with it: an agent stops its load here (the dead-man
    // switch), before the session redials.
    virtual void OnDetached() {}
    // Once per telemetry interval while attached (the first at once): a message to send up,
    // if any (an observer's telemetry).
    virtual std::optional<v1::ShardTelemetry> OnTick() { return std::nullopt; }
    // Asked on every tick: true ends the session for good (an agent idle after its work).
    virtual bool ShouldLeave() { return false; }
  };

  struct Options {
    std::string program = "churnlab-agent";  // names its log lines
    std::string coordinator;                 // host:port
    LinkSecurity security;                   // token and TLS toward the coordinator
    v1::Hello hello;                         // name, host, addresses, allow-list and host facts
    absl::Duration telemetry_interval = absl::Seconds(1);
    // Redials wait first_backoff (at least 1 ms), doubling up to max_backoff; an attachment
    // that lasted ten seconds earns first_backoff again.
    absl::Duration first_backoff = absl::Milliseconds(250);
    absl::Duration max_backoff = absl::Seconds(5);
    // The session's clock: how long an attachment lasted and when a redial is due. Monotonic
    // (a wall clock stepped back would hold a redial for as long); tests drive it by hand, and
    // a wait notices a change of it within kClockPoll.
    std::function<absl::Time()> now = [] { return absl::FromUnixNanos(SystemClock().NowNanos()); };
    // Where the session's lines go; unset: stderr, prefixed with `program`.
    std::function<void(const std::string&)> log;
    // Re-reads the host's settings (port range, sysctls, fd limit, available memory) into a
    // hello; when a setting differs from the last one sent, or available memory moved by more
    // than an eighth, the new hello goes to the coordinator (quietly, for memory alone).
    // Unset: never.
    std::function<void(v1::Hello*)> refresh_settings;
    // Set: the session uses this channel instead of dialing `coordinator` (tests: an in-process
    // channel to a fake coordinator).
    std::shared_ptr<grpc::Channel> channel;
  };

  // `handler` must outlive the session.
  CoordinatorSession(Options options, Handler* handler);
  ~CoordinatorSession();

  // Serves until Shutdown(): attaches, hands orders on, reattaches after a lost stream.
  void Run();
  // Ends Run() from any thread.
  void Shutdown();
  bool shutting_down() const { return shutdown_.load(); }
  // Sends `message` up the stream, from any thread; false when not attached.
  bool Send(const v1::AgentMessage& message);
  // A line to options.log, or on stderr prefixed with the program's name.
  void Log(const std::string& line) const;
  const v1::Hello& first_hello() const { return options_.hello; }
  // Re-reads the host's settings now (options.refresh_settings) and sends a new hello when they
  // differ from the last one sent; also done once per tick. From any thread.
  void RefreshHello();

 private:
  using Stream = grpc::ClientReaderWriter<v1::AgentMessage, v1::CoordinatorMessage>;

  // One attachment; returns when the stream ends. OK when the coordinator ended it cleanly.
  grpc::Status Serve(v1::AgentGateway::Stub& stub);
  // While attached, once per telemetry_interval: the handler's message, and a new hello when the
  // host's settings changed.
  void TickWhile(const std::atomic<bool>& attached);
  // Waits until `due` on the session's clock, or Shutdown().
  void WaitOnClock(absl::Time due);

  // How often a redial wait looks at the clock: a test's clock may jump without a notify.
  static constexpr absl::Duration kClockPoll = absl::Milliseconds(50);

  Options options_;
  Handler* handler_;
  std::atomic<bool> shutdown_{false};

  std::mutex mu_;  // guards the members below
  std::condition_variable cv_;
  grpc::ClientContext* context_ = nullptr;
  Stream* stream_ = nullptr;
  v1::Hello last_hello_;   // what the coordinator was last told (options_.hello, refreshed)
  std::mutex write_mu_;    // one Write at a time on the stream
  std::mutex refresh_mu_;  // one RefreshHello at a time
};

}  // namespace churnlab
