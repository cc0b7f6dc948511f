// The agent's life on its link to the coordinator (host/coordinator_session.h): run the shards
// it is given with the churn engine and stream their telemetry. The agent enforces its own
// allow-list and caps whatever it is asked, and stops its load when it loses the coordinator.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/destinations.h"
#include "agent/engine.h"
#include "agent/shard_telemetry.h"
#include "common/net_address.h"
#include "common/target_names.h"
#include "host/coordinator_session.h"

namespace churnlab {

class AgentSession final : public CoordinatorSession::Handler {
 public:
  // The longest wait before a shard starts that the agent accepts from a coordinator.
  static constexpr int64_t kMaxStartAfterSeconds = 60;
  struct Options {
    // The coordinator, security, hello, intervals, and the agent's clock (link.now: when its
    // last shard ended, for exit_when_idle, and when a redial is due).
    CoordinatorSession::Options link;
    // Shutdown() once idle this long after running at least one shard (so a Kubernetes Job's
    // agents exit 0 when the work is done); zero = never.
    absl::Duration exit_when_idle = absl::ZeroDuration();
    AllowList allow_targets;
    // Caps the agent keeps whatever the coordinator asks (0 = none): new connections/s in any
    // model (open-model shards above it are refused, the closed model is paced under it), and
    // connections in flight (shards that would hold more are refused).
    double max_rate = 0;
    int64_t max_in_flight = 0;
    int threads = 1;  // engine threads per shard
    // The dead-man limit, enforced by the engine itself: it starts no connection later than
    // this (or the shorter lease the coordinator grants) after the last Ping the coordinator
    // answered for the shard's run, so an agent, or an engine process, stopped and resumed
    // after the run's end starts nothing. Pings go once per telemetry interval.
    absl::Duration lease = absl::Seconds(3);
  };

  explicit AgentSession(Options options);
  ~AgentSession() override;

  // Serves until Shutdown(): attaches, runs shards, reattaches after a lost stream.
  void Run() { link_.Run(); }
  // Ends Run() from any thread; a running shard is stopped.
  void Shutdown();
  // The run of the shard in hand (waiting to start or running), "" when idle.
  std::string running_run();

  // CoordinatorSession::Handler: the coordinator's orders.
  void OnAssign(const v1::Shard& shard) override;
  // The coordinator handed this agent a new share of a running run (its `rebalance`).
  void OnAdjust(const v1::Adjust& adjust) override;
  void OnStop(const v1::Stop& stop) override;
  // The answer to a Ping: extends the running shard's lease when it names the shard's run.
  void OnLease(const v1::Lease& lease) override;
  // The dead-man switch: never keep loading a target without a coordinator.
  void OnDetached() override;
  bool ShouldLeave() override;

 private:
  // Why the agent will not run `shard`, or OK; its targets given by name go to *names. `range`:
  // the port range's use now (bind mode engine's plan leaves out its bind() ports).
  absl::Status CheckShard(const v1::Shard& shard, const absl::StatusOr<RangeUse>& range,
                          EngineParams* params, std::vector<NamedTarget>* names) const;
  // On the shard's thread: checks the shard (resolving its names and the allow-list's, which
  // may take DNS's time: never on the thread that reads the coordinator), builds its engine and
  // runs it, or refuses it.
  void PrepareShard(v1::Shard shard, std::chrono::steady_clock::time_point start_at);
  void RunShard(std::string run_id, ShardEnginePtr engine,
                std::chrono::steady_clock::time_point start_at, std::vector<NamedTarget> names,
                absl::StatusOr<RangeUse> range);
  // Until the engine is done: a stop asked for, pings, what the names' lookups changed (`watch`
  // may be null), and telemetry each interval.
  void StreamTelemetry(const std::string& run_id, ShardEngine& engine,
                       ShardTelemetryCollector& telemetry, NameWatch* watch);
  // Looks `names` up again every params.resolve_interval (null when there are none, or it is 0).
  std::unique_ptr<NameWatch> WatchNames(const std::string& run_id, const EngineParams& params,
                                        std::vector<NamedTarget> names);
  // Gives the engine the destinations a lookup changed, and the telemetry the table and counts.
  void TakeLookups(const std::string& run_id, NameWatch& watch, ShardEngine& engine,
                   ShardTelemetryCollector& telemetry);
  // The engine in this process, or in as many processes as the fd limit needs.
  absl::StatusOr<ShardEnginePtr> MakeEngine(const EngineParams& params);
  void StopShard();
  // Asks the coordinator whether it still counts this agent in (its answer: OnLease).
  void SendPing();
  void Refuse(const std::string& run_id, const std::string& reason);
  // The link's options, its hello refresh adding the idle census (AddIdleCensus).
  CoordinatorSession::Options LinkOptions();
  // While no shard runs: the ports of the range held on the host and the namespace's TIME_WAIT
  // (Hello.range_held), counted every 2 s or less often (its cost) and reused in between.
  void AddIdleCensus(v1::Hello* hello);

  Options options_;
  // The source IPs its hello offers, parsed once: a shard may bind only these.
  absl::flat_hash_set<SocketAddress> offered_;
  std::mutex census_mu_;  // guards the two below
  std::optional<v1::PortsAtStart> idle_census_;
  absl::Time idle_census_due_ = absl::InfinitePast();
  CoordinatorSession link_;

  std::mutex mu_;  // guards the members below
  std::condition_variable cv_;
  std::string running_run_;
  // The shard's engine from its assignment on, for leases and rate changes.
  ShardEngine* engine_ = nullptr;
  int64_t last_ping_nanos_ = 0;  // the clock in the last Ping sent (SystemClock)
  int runs_done_ = 0;
  absl::Time last_run_end_;
  bool stop_requested_ = false;
  std::thread shard_thread_;
};

}  // namespace churnlab
