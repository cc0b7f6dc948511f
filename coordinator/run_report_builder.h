// A run's report assembled from what its agents and observers reported: totals, errors, merged
// latency histograms, per-agent and per-source breakdowns, series points. What the numbers mean
// (tuple budget, observations, verdict) comes from analysis/.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "analysis/run_shape.h"
#include "churnlab/v1/report.pb.h"
#include "churnlab/v1/spec.pb.h"
#include "churnlab/v1/telemetry.pb.h"
#include "common/histogram.h"
#include "coordinator/scheduler.h"

namespace churnlab {

struct ShardRecord {
  Assignment assignment;
  std::string host;
  v1::Hello hello;               // the agent's latest hello while it ran: port range, sysctls
  v1::ShardTelemetry latest;     // cumulative; empty until the first telemetry
  bool final = false;            // no more telemetry will come
  std::string problem;           // why the shard did not run to the end ("" if it did)
  bool never_ran = false;        // refused, or cancelled before it was sent: no load, no budget
  double lost_after_s = 0;       // seconds into the run when it was lost; 0 if it was not
  bool share_handed_on = false;  // its rate went to the others (the spec's rebalance)
  bool fresh = false;            // telemetry arrived since the last series point
  absl::Time last_telemetry;     // when the latest arrived (the run's start before the first)
  // When the last lease granted to its agent lapses (Coordinator::LeaseFor); the agent may start
  // connections until then.
  absl::Time lease_until = absl::InfinitePast();
  v1::Totals series_totals;  // its cumulative counts at the last series point
};

// A target attached as an observer, followed over one run.
struct ObserverRecord {
  std::string name;
  std::string host;
  std::string boot_id;                         // its kernel's (BootIdOf its hello)
  std::map<std::string, std::string> sysctls;  // from its hello: the server host's settings
  std::map<std::string, int64_t> baseline;     // its counter deltas when the run started
  v1::ServerCounts server_baseline;            // its server's counts when the run started
  v1::ShardTelemetry latest;
  std::map<std::string, v1::ListenReport> peaks;  // by address
  absl::Time updated_at = absl::InfinitePast();   // when `latest` arrived
};

// Folds an observer's new telemetry into `record`: latest value and per-address peaks.
void UpdateObserver(ObserverRecord* record, const v1::ShardTelemetry& telemetry);

struct RunRecord {
  std::string id;
  v1::RunSpec spec;
  analysis::RunShape shape;  // the spec's strings parsed once, as it started
  std::vector<ShardRecord> shards;
  std::map<std::string, size_t> shard_of;  // agent name -> index in shards
  std::vector<ObserverRecord> observers;
  absl::Time started_at;    // on the coordinator's (monotonic) clock
  absl::Time started_wall;  // the same moment on the wall clock, for people
  absl::Time deadline;      // finalized then even if some shard never sent its final telemetry
  // When every shard had sent its final telemetry: the observers' census taken after this
  // moment holds the drain (the last CLOSE_WAIT and TIME_WAIT), so the run waits for it.
  absl::Time drained_at = absl::InfiniteFuture();
  bool cancel_requested = false;
  v1::RunReport::State state = v1::RunReport::STATE_RUNNING;
  // The coordinator's lifecycle marks: stored but not yet sent to its agents (StartRun), and
  // ended, its final report being judged and stored outside the lock (Tick).
  bool starting = false;
  bool finishing = false;
  // The newest series point and how many there are; the series itself goes to the run store
  // as it is made, so a long run costs the coordinator no memory for it.
  v1::SeriesPoint last_point;
  int point_count = 0;
  absl::Time last_point_at;  // of the last series point (started_at before the first)
  absl::Time last_save;
  // The merged cumulative counts at the last series point, to diff the next one against.
  v1::Totals series_totals;
  std::map<std::string, uint64_t> series_errors;
  std::map<std::pair<v1::FailurePhase, std::string>, uint64_t> series_failures;  // (phase, code)
  Histogram series_connect;
  Histogram series_connection;
  Histogram series_tls_handshake;
  Histogram series_connect_call;
  Histogram series_loop_lag;
  // Run-store writes that failed: the error while it lasts ("" once every write is stored), and
  // the series points still waiting to be stored, oldest first (a run keeps at most
  // kMaxUnstoredPoints of them; older ones are dropped and the error says so).
  std::string store_error;
  std::deque<std::pair<int, v1::SeriesPoint>> unstored_points;
  uint64_t dropped_points = 0;
};
inline constexpr size_t kMaxUnstoredPoints = 3600;

// The report of `run` as it stands, with its tuple budget but without its series (that is in
// the run store), thresholds, verdict or observations: a finished run's report gets those from
// analysis::JudgeRun and analysis::Observe once its series is attached.
v1::RunReport BuildReport(const RunRecord& run);

// What the analysis needs of the run's shards; views into `run`, valid while it is unchanged.
std::vector<analysis::ShardFacts> FactsOf(const RunRecord& run);

// Makes the point for the interval since the previous one (t_s seconds after the start) the
// run's last_point.
void AppendSeriesPoint(RunRecord* run, const v1::RunReport& now, double t_s);

}  // namespace churnlab
