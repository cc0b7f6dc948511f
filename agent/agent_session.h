// The agent's life: dial the coordinator, say hello, run the shards it is given with the churn
// engine and stream their telemetry; redial with backoff when the coordinator goes away. The
// agent enforces its own allow-list and rate cap whatever it is asked, and stops its load when
// it loses the coordinator.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/engine.h"
#include "churnlab/v1/agent.grpc.pb.h"
#include "common/net_address.h"
#include "proto/grpc_link.h"

namespace churnlab {

class AgentSession {
 public:
  struct Options {
    std::string program = "churnlab-agent";  // names its log lines
    std::string coordinator;                 // host:port
    LinkSecurity security;                   // token and TLS toward the coordinator
    // Shutdown() once idle this long after running at least one shard (so a Kubernetes Job's
    // agents exit 0 when the work is done); zero = never.
    absl::Duration exit_when_idle = absl::ZeroDuration();
    v1::Hello hello;  // name, host, source IPs, allow-list and host facts
    std::vector<Cidr> allow_targets;
    // Caps the agent keeps whatever the coordinator asks (0 = none): new connections/s in any
    // model (open-model shards above it are refused, the closed model is paced under it), and
    // connections in flight (shards that would hold more are refused).
    double max_rate = 0;
    int64_t max_in_flight = 0;
    int threads = 1;  // engine threads per shard
    absl::Duration telemetry_interval = absl::Seconds(1);
    absl::Duration max_backoff = absl::Seconds(5);
    // Re-reads the host's settings (port range, sysctls, fd limit) into a hello; when they
    // differ from the last one sent, the new hello goes to the coordinator. Unset: never.
    std::function<void(v1::Hello*)> refresh_settings;
    // Set for an observer (a target reporting its host): sent every telemetry_interval while
    // attached; an observer refuses every shard.
    std::function<v1::ShardTelemetry()> observer_telemetry;
  };

  explicit AgentSession(Options options);
  ~AgentSession();

  // Serves until Shutdown(): attaches, runs shards, reattaches after a lost stream.
  void Run();
  // Ends Run() from any thread; a running shard is stopped.
  void Shutdown();

 private:
  using Stream = grpc::ClientReaderWriter<v1::AgentMessage, v1::CoordinatorMessage>;

  // One attachment; returns when the stream ends. OK when the coordinator ended it cleanly.
  grpc::Status Serve(v1::AgentGateway::Stub& stub);
  void OnAssign(const v1::Shard& shard);
  // Why the agent will not run `shard`, or OK.
  absl::Status CheckShard(const v1::Shard& shard, EngineParams* params) const;
  void RunShard(std::string run_id, std::unique_ptr<Engine> engine, absl::Duration start_after);
  void StopShard();
  void Log(const std::string& line) const;
  // The coordinator handed this agent a new share of a running run (its `rebalance`).
  void OnAdjust(const v1::Adjust& adjust);
  bool Write(const v1::AgentMessage& message);
  // While attached, once per telemetry_interval: an observer's telemetry, and a new hello when
  // the host's settings changed.
  void TickWhile(const std::atomic<bool>& attached);

  Options options_;
  std::atomic<bool> shutdown_{false};

  std::mutex mu_;  // guards the members below
  std::condition_variable cv_;
  grpc::ClientContext* context_ = nullptr;
  Stream* stream_ = nullptr;
  std::string running_run_;
  Engine* engine_ = nullptr;  // the running shard's engine once started, for rate changes
  int runs_done_ = 0;
  absl::Time last_run_end_;
  v1::Hello last_hello_;  // what the coordinator was last told (options_.hello, refreshed)
  bool stop_requested_ = false;
  std::thread shard_thread_;
  std::mutex write_mu_;
};

}  // namespace churnlab
