// The coordinator's state and rules, free of gRPC: the registry of attached agents, the runs in
// flight, scheduling, aggregation, the store. The gRPC services translate to and from it.
//
// Locking: one mutex (mu_) guards the state; the gRPC reactions (an agent's hello, telemetry,
// stream end) take only it, and nothing holds it across I/O. Store writes, the analysis of an
// ended run and the calls to watchers happen in Tick() between two short holds of mu_
// (coordinator_tick.cc); watchers have a lock of their own (Watchers).
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "churnlab/v1/agent.pb.h"
#include "churnlab/v1/control.pb.h"
#include "common/clock.h"
#include "coordinator/run_report_builder.h"
#include "coordinator/run_store.h"
#include "coordinator/watchers.h"

namespace churnlab {

// The way down to one attached agent. Send() must not block: it queues.
class AgentLink {
 public:
  virtual ~AgentLink() = default;
  virtual void Send(const v1::CoordinatorMessage& message) = 0;
};

class Coordinator {
 public:
  struct Options {
    // Shards start this long after they are sent, so that agents begin together.
    absl::Duration start_after = absl::Milliseconds(500);
    // Extra wait for final telemetry after a run's own drain time.
    absl::Duration finish_grace = absl::Seconds(5);
    // Save a running run's report this often (and always when it ends); its series points are
    // stored as they are made.
    absl::Duration save_every = absl::Seconds(1);
    // A series point is added once every shard has sent telemetry since the last one (agents
    // report about once a second, roughly in step), but no sooner than `min_point_interval`
    // after it and no later than `max_point_interval`. Tick() more often than that.
    absl::Duration min_point_interval = absl::Milliseconds(500);
    absl::Duration max_point_interval = absl::Milliseconds(1200);
    // A running shard that sends no telemetry for this long is marked lost (a cut network is
    // usually noticed sooner, by gRPC keepalive closing its stream).
    absl::Duration telemetry_silence = absl::Seconds(3);
    // How long an answered Ping lets an agent's engine start connections (its lease). A shard
    // that did not end by itself (lost, or past the deadline) holds its run open until the last
    // lease granted to it has lapsed: a stopped agent resumed later starts nothing after the
    // run's end.
    absl::Duration lease = absl::Seconds(3);
    // Once every shard has drained, a run waits up to this long for each of its observers'
    // next census (they report about once a second), so the server side's last state counts.
    absl::Duration observer_census_wait = absl::Milliseconds(2500);
    // The coordinator's clock for everything it decides by: when telemetry arrived, silences,
    // leases, deadlines, the series' seconds. Monotonic (SystemClock, CLOCK_BOOTTIME, as an
    // absl::Time): a wall-clock step (NTP, a resumed VM) must not lose agents or end runs. Tests
    // drive it by hand (with Tick()) instead of sleeping.
    std::function<absl::Time()> now = [] { return absl::FromUnixNanos(SystemClock().NowNanos()); };
    // Wall time, only for what people read: run ids, a run's start, when an agent was seen.
    std::function<absl::Time()> wall = [] { return absl::Now(); };
    // Agents and observers attached at once; one more is refused (RESOURCE_EXHAUSTED) and
    // counted (attaches_refused).
    size_t max_agents = 4096;
    // Agents lost during a run stay listed (state "lost") up to this many, each with a summary
    // of its hello (AgentInfo's), not all of it.
    size_t max_lost_agents = 256;
    // Watch (WatchRun streams) following runs at once; one more is refused (RESOURCE_EXHAUSTED)
    // and counted (watches_refused): each holds a stream, its connection and an update queue.
    size_t max_watches = 1024;
    // After agents leave or runs end, freed heap is handed back to the kernel at most this often.
    absl::Duration trim_interval = absl::Seconds(1);
  };
  using Watcher = Watchers::Watcher;

  Coordinator(RunStore* store, Options options);

  // ALREADY_EXISTS when a live agent has the name; INVALID_ARGUMENT for a hello outside
  // ValidateHello's limits (proto/hello.h), naming the field. On success
  // the agent is sent a Welcome through `link`, which must stay valid until DetachAgent().
  absl::Status AttachAgent(const v1::Hello& hello, AgentLink* link);
  // A later hello from an attached agent: its settings changed (port range, sysctls, fd limit).
  // INVALID_ARGUMENT when it tries to change its name or the hello is outside ValidateHello's
  // limits; the agent's stream is then ended.
  absl::Status UpdateAgent(const std::string& name, const v1::Hello& hello);
  // The agent's stream ended; a shard it was running is marked lost (its data so far kept).
  void DetachAgent(const std::string& name, AgentLink* link);
  // Takes the message (the reactor moves its own in: no copy on the way), checks it
  // (SanitizeTelemetry) and keeps it.
  void OnTelemetry(const std::string& agent, v1::ShardTelemetry telemetry);
  void OnRefusal(const std::string& agent, const v1::Refusal& refusal);
  // The answer to an agent's Ping: its clock echoed, and the run this coordinator counts its
  // shard in ("" once the run ended, the shard was refused or finished, or the agent was lost).
  v1::CoordinatorMessage LeaseFor(const std::string& agent, const v1::Ping& ping);

  absl::StatusOr<v1::StartRunResponse> StartRun(v1::RunSpec spec);
  absl::StatusOr<v1::RunReport> GetRun(const std::string& run_id);
  // A page of the stored runs, with those the store could not save yet in their places.
  absl::StatusOr<RunPage> ListRuns(const RunQuery& query = {});
  absl::Status CancelRun(const std::string& run_id);
  // Every agent in summary (AgentInfo's comment says what that keeps), or only those named in
  // `full` (at most kMaxAgentsInFull) with their whole hello; lost agents always in summary.
  std::vector<v1::AgentInfo> ListAgents(const std::vector<std::string>& full = {});
  // The runs in flight as they stand, in summary (ViewerSummary: the fullest sources, the newest
  // series point).
  std::vector<v1::RunReport> RunningReports();
  // Telemetry messages received since start (a health figure for /metrics).
  uint64_t telemetry_messages() const { return telemetry_messages_.load(); }
  // Run-store writes that failed since the coordinator started.
  uint64_t store_errors() const { return store_errors_.load(); }
  // Telemetry entries dropped or clamped where they entered (SanitizeTelemetry).
  uint64_t telemetry_entries_refused() const { return telemetry_entries_refused_.load(); }
  // Attaches refused because max_agents were attached.
  uint64_t attaches_refused() const { return attaches_refused_.load(); }
  uint64_t watches_refused() const { return watches_refused_.load(); }
  // Stalls of its own CreditStall was told of (its ticker overslept: CPU contention, SIGSTOP),
  // and their total length.
  uint64_t stalls() const { return stalls_.load(); }
  absl::Duration stalled() const { return absl::Nanoseconds(stalled_nanos_.load()); }

  // Calls `watcher` on every tick of the run until it ends (at once with the final report when
  // it already has). Returns an id for Unwatch; NOT_FOUND for an unknown run. Watchers are
  // called from Tick(), never under mu_; they must not call Watch or Unwatch.
  absl::StatusOr<int> Watch(const std::string& run_id, Watcher watcher);
  // Watch for a run still running only: nullopt when it is not (then its final report is
  // GetRun's, which reads the store: call that where a disk may take its time).
  absl::StatusOr<std::optional<int>> WatchRunning(const std::string& run_id, Watcher watcher);
  // Calls `watcher` on every update of every run, running or ending, until Unwatch().
  int WatchAll(Watcher watcher) { return watchers_.Add("", std::move(watcher)); }
  // After it returns, the watcher is never called again.
  void Unwatch(int watch_id) { watchers_.Remove(watch_id); }

  // Every ~100 ms, from one thread: series points, progress to watchers, periodic saves, ends
  // runs that are done; then, when agents left or runs ended, gives freed memory back to the
  // kernel. State changes under mu_; the store and the watchers outside it.
  void Tick(absl::Time now);
  // options.now(): the clock Tick() takes.
  absl::Time Now() const { return options_.now(); }
  // The coordinator itself did not run for `stalled` (its ticker overslept that long: CPU
  // contention, SIGSTOP): running shards' silences and deadlines do not count that time, so a
  // busy host loses no agent that kept talking while nobody here was listening.
  void CreditStall(absl::Duration stalled);

 private:
  struct AgentEntry {
    v1::Hello hello;
    // Its listing's summary (the first 16 of each list, the totals), made once per hello: a
    // listing every second copied 4,096 addresses per agent under mu_ to keep 16.
    v1::AgentInfo summary;
    AgentLink* link;
    std::string busy_with;                 // run id, "" when idle
    std::vector<SocketAddress> sources;    // its hello's source IPs, parsed once
    std::vector<SocketAddress> listening;  // an observer's listen addresses, parsed once
    // When the silence rule lost it from a run (wall time), while its stream stayed open: if
    // the stream then closes, it is listed lost from then. Any message from it clears this.
    std::optional<absl::Time> silent_since;
  };
  struct LostAgent {
    v1::AgentInfo summary;
    absl::Time at;  // wall time, for people
  };
  // Finished runs whose final report the store could not take: kept here, served from here, and
  // saved (with their unstored points) as soon as the store can write again.
  struct Unsaved {
    v1::RunReport report;                                // final, without its series
    std::deque<std::pair<int, v1::SeriesPoint>> points;  // not stored yet, oldest first
  };
  struct TickWork;  // what one Tick takes out of the state to store and to announce
  struct RunWork;

  // After `lost` was marked lost: with the spec's rebalance (open model), its rate goes to the
  // shards still running, each told its new share (once the run is sent, for a starting run).
  void HandOnShare(RunRecord& run, ShardRecord& lost);
  // StartRun's plan under mu_: the run's record (starting), its response's id, agents and
  // warnings; FAILED_PRECONDITION and the like from PlanRun.
  // `named`: the addresses of the spec's names here, for matching observers.
  absl::StatusOr<RunRecord> PlanRecord(v1::RunSpec spec, analysis::RunShape shape,
                                       v1::StartRunResponse& response,
                                       const std::vector<SocketAddress>& named);
  // Sends a run that the store took to its agents. Requires mu_.
  void SendShards(RunRecord& run);
  // Notes a failed store write in `run` (its report's store_error) and the metric. Requires mu_.
  void NoteStoreError(RunRecord& run, const absl::Status& status);
  // True while a drained run still waits for an observer census taken after the drain (sets
  // run.drained_at the first time it is asked).
  bool AwaitingObserverCensus(RunRecord& run, absl::Time now) const;
  // Marks lost the shards of `run` that sent no telemetry for options_.telemetry_silence.
  void MarkSilentShardsLost(RunRecord& run, absl::Time now);
  // Whether `run` is due a series point at `now`.
  bool PointDue(const RunRecord& run, absl::Time now) const;
  ShardRecord* FindShard(const std::string& run_id, const std::string& agent);

  // Tick's three steps (coordinator_tick.cc): under mu_, take points, saves, progress and ended
  // runs out of the state; without it, store them and judge the ended runs; under mu_ again,
  // put back what the store did not take and let the ended runs go.
  TickWork CollectTick(absl::Time now);
  void CollectRun(RunRecord& run, absl::Time now, TickWork& work);
  void FinishRun(RunRecord& run, RunWork& work);
  void StoreTick(TickWork& work);
  void StoreFinal(RunWork& work);
  void ApplyTick(TickWork& work);
  void ReleaseFreedMemory(absl::Time now);

  RunStore* store_;
  Options options_;
  std::mutex tick_mu_;  // one Tick at a time: it owns the run's points between its two holds of mu_
  std::mutex mu_;
  std::map<std::string, AgentEntry> agents_;
  std::map<std::string, LostAgent> lost_;
  std::map<std::string, RunRecord> running_;  // also starting and finishing runs
  std::map<std::string, Unsaved> unsaved_;
  std::atomic<uint64_t> store_errors_{0};
  std::atomic<uint64_t> telemetry_entries_refused_{0};
  std::atomic<uint64_t> attaches_refused_{0};
  std::atomic<uint64_t> watches_refused_{0};
  std::atomic<uint64_t> stalls_{0};
  std::atomic<int64_t> stalled_nanos_{0};
  // Observers' latest telemetry (targets reporting their host), by name.
  std::map<std::string, v1::ShardTelemetry> observed_;
  Watchers watchers_;
  bool released_since_trim_ = false;  // an agent left or a run ended since the last trim
  absl::Time last_trim_ = absl::InfinitePast();
  std::atomic<uint64_t> telemetry_messages_{0};
};

}  // namespace churnlab
