// Coordinator::Tick: the runs' clockwork. Each tick takes what is due out of the state under
// mu_ (series points, a periodic save, progress, the runs that ended), stores it and judges the
// ended runs without the lock, then puts back under mu_ what the store did not take. The gRPC
// reactions (telemetry, hellos) wait at most for the in-memory steps, never for SQLite or a
// watcher. Tick runs on one thread; tick_mu_ makes a second caller wait its turn.
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "absl/strings/str_cat.h"
#include "analysis/observations.h"
#include "analysis/verdict.h"
#include "coordinator/coordinator.h"
#include "coordinator/scheduler.h"
#include "coordinator/source_detail.h"

namespace churnlab {

// One run's share of a tick.
struct Coordinator::RunWork {
  std::string run_id;
  // The run's unstored points, oldest first: moved out of the run, written, and what the store
  // did not take goes back. While they are out, GetRun serves the series without them.
  std::deque<std::pair<int, v1::SeriesPoint>> points;
  bool save_due = false;                  // a periodic save of the running run (its progress)
  std::optional<v1::RunReport> save;      // that save: the progress in summary
  std::optional<v1::RunReport> progress;  // for watchers: the report with its newest point
  std::optional<v1::RunReport> final;     // an ended run: built under mu_, judged after
  uint64_t dropped_points = 0;
  absl::Status points_status;  // the first failed point write
  absl::Status save_status;    // the periodic or final save
};

struct Coordinator::TickWork {
  std::vector<RunWork> runs;
  std::map<std::string, Unsaved> unsaved;  // copies, tried again
  std::vector<std::string> now_saved;      // of those, the ones the store took
};

void Coordinator::Tick(absl::Time now) {
  std::lock_guard<std::mutex> one_tick(tick_mu_);
  TickWork work = CollectTick(now);
  // The store between points gets a summary (source_detail.h), made outside mu_: it does not
  // grow with the agents' addresses every second. Watchers get the whole report and each that
  // sends it on (the event stream, WatchRun) its summary; /metrics counts every source.
  for (RunWork& run : work.runs) {
    if (run.save_due && run.progress) run.save = ViewerSummary(*run.progress);
  }
  StoreTick(work);
  ApplyTick(work);
  for (RunWork& run : work.runs) {
    if (run.progress) watchers_.Notify(*run.progress, /*final=*/false);
    if (run.final) watchers_.Notify(*run.final, /*final=*/true);
  }
  ReleaseFreedMemory(now);
}

Coordinator::TickWork Coordinator::CollectTick(absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  TickWork work;
  work.unsaved = unsaved_;
  for (auto& [id, run] : running_) {
    if (run.starting || run.finishing || now < run.started_at) continue;
    CollectRun(run, now, work);
  }
  return work;
}

void Coordinator::CollectRun(RunRecord& run, absl::Time now, TickWork& work) {
  MarkSilentShardsLost(run, now);
  if (now >= run.deadline) {
    for (ShardRecord& shard : run.shards) {
      if (shard.final) continue;
      shard.final = true;
      shard.problem = "sent no final telemetry by the run's deadline";
    }
  }
  // A shard that did not end by itself (lost, or past the deadline) may still have an engine
  // holding a lease: the run ends once that has lapsed, so nothing connects after its end.
  bool all_final = std::all_of(run.shards.begin(), run.shards.end(), [now](const ShardRecord& s) {
    return s.final && (s.problem.empty() || now >= s.lease_until);
  });
  if (!all_final && !PointDue(run, now)) return;
  if (all_final && AwaitingObserverCensus(run, now)) return;
  v1::RunReport report = BuildReport(run);
  AppendSeriesPoint(&run, report, absl::ToDoubleSeconds(now - run.started_at));
  run.last_point_at = now;
  // The point now, the rest of the report every save_every: a coordinator killed mid-run
  // leaves the run's data up to here. A failed write is kept and tried again each tick.
  run.unstored_points.emplace_back(run.point_count - 1, run.last_point);
  RunWork& w = work.runs.emplace_back();
  w.run_id = run.id;
  w.points = std::exchange(run.unstored_points, {});
  w.dropped_points = run.dropped_points;
  if (all_final) return FinishRun(run, w);
  if (now - run.last_save >= options_.save_every) {
    w.save_due = true;
    run.last_save = now;
  }
  // Watchers get the newest point only: they have seen the others.
  *report.add_series() = run.last_point;
  w.progress = std::move(report);
}

void Coordinator::FinishRun(RunRecord& run, RunWork& work) {
  bool any_ran = std::any_of(run.shards.begin(), run.shards.end(),
                             [](const ShardRecord& s) { return s.latest.sources_size() > 0; });
  run.state = run.cancel_requested ? v1::RunReport::STATE_CANCELLED
              : any_ran            ? v1::RunReport::STATE_COMPLETED
                                   : v1::RunReport::STATE_FAILED;
  run.finishing = true;
  for (const ShardRecord& shard : run.shards) {
    auto agent = agents_.find(shard.assignment.agent);
    if (agent != agents_.end() && agent->second.busy_with == run.id) {
      agent->second.busy_with.clear();
    }
  }
  work.final = BuildReport(run);
}

// The text of a store error in a report: the store's words, and the points it cost.
std::string StoreErrorText(const absl::Status& status, uint64_t dropped_points) {
  std::string error(status.message());
  if (dropped_points > 0) absl::StrAppend(&error, " (", dropped_points, " series points lost)");
  return error;
}

void Coordinator::StoreTick(TickWork& work) {
  for (auto& [id, u] : work.unsaved) {
    while (!u.points.empty() &&
           store_->AppendPoint(id, u.points.front().first, u.points.front().second).ok()) {
      u.points.pop_front();
    }
    if (!u.points.empty()) break;  // still failing: try again next tick
    u.report.clear_store_error();
    if (!store_->Save(u.report).ok()) break;
    work.now_saved.push_back(id);
  }
  for (RunWork& run : work.runs) {
    while (!run.points.empty()) {
      const auto& [seq, point] = run.points.front();
      run.points_status = store_->AppendPoint(run.run_id, seq, point);
      if (!run.points_status.ok()) break;
      run.points.pop_front();
    }
    if (run.final) {
      StoreFinal(run);
    } else if (run.save) {
      run.save_status = store_->Save(*run.save);
    }
  }
}

void Coordinator::StoreFinal(RunWork& work) {
  // Observations read the series (connect() slowing as ports fill), so it is attached first:
  // what the store holds, then what it could not take yet.
  v1::RunReport& report = *work.final;
  absl::StatusOr<std::vector<v1::SeriesPoint>> points = store_->LoadPoints(work.run_id);
  if (points.ok()) report.mutable_series()->Assign(points->begin(), points->end());
  for (const auto& [seq, point] : work.points) *report.add_series() = point;
  analysis::JudgeRun(&report);
  for (std::string& sentence : analysis::Observe(report)) {
    report.add_observations(std::move(sentence));
  }
  v1::RunReport stored = report;
  stored.clear_series();  // the points are stored one by one
  stored.clear_store_error();
  work.save_status = work.points.empty() ? store_->Save(stored)
                                         : absl::UnavailableError(work.points_status.message());
  if (work.save_status.ok()) {
    report.clear_store_error();
    return;
  }
  report.set_store_error(StoreErrorText(work.save_status, work.dropped_points));
  report.clear_observations();
  for (std::string& sentence : analysis::Observe(report)) {
    report.add_observations(std::move(sentence));
  }
  // Kept for ApplyTick: the stored form, served and saved again until the store takes it.
  work.save = std::move(stored);
}

void Coordinator::ApplyTick(TickWork& work) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& id : work.now_saved) {
    std::fprintf(stderr, "churnlab-coordinator: run %s: stored at last, the store writes again\n",
                 id.c_str());
    unsaved_.erase(id);
  }
  for (auto& [id, u] : work.unsaved) {
    auto it = unsaved_.find(id);
    if (it != unsaved_.end()) it->second.points = std::move(u.points);
  }
  for (RunWork& w : work.runs) {
    auto it = running_.find(w.run_id);
    if (it == running_.end()) continue;
    RunRecord& run = it->second;
    // Points the store did not take go back in front of any made since (none: one tick at a
    // time), at most kMaxUnstoredPoints of them; older ones are dropped and the error says so.
    run.unstored_points.insert(run.unstored_points.begin(), w.points.begin(), w.points.end());
    if (run.unstored_points.size() > kMaxUnstoredPoints) {
      size_t drop = run.unstored_points.size() - kMaxUnstoredPoints;
      run.unstored_points.erase(run.unstored_points.begin(), run.unstored_points.begin() + drop);
      run.dropped_points += drop;
    }
    if (!w.points_status.ok()) NoteStoreError(run, w.points_status);
    if (!w.save_status.ok()) {
      NoteStoreError(run, w.save_status);
    } else if (w.save && run.unstored_points.empty() && !run.store_error.empty()) {
      std::fprintf(stderr, "churnlab-coordinator: run %s: the run store writes again\n",
                   run.id.c_str());
      run.store_error.clear();
    }
    if (!w.final) continue;
    if (!w.save_status.ok()) {
      unsaved_[run.id] = Unsaved{std::move(*w.save), std::move(run.unstored_points)};
    }
    running_.erase(it);
    released_since_trim_ = true;
  }
}

void Coordinator::NoteStoreError(RunRecord& run, const absl::Status& status) {
  store_errors_.fetch_add(1, std::memory_order_relaxed);
  std::string error = StoreErrorText(status, run.dropped_points);
  if (run.store_error != error) {
    std::fprintf(stderr, "churnlab-coordinator: run %s: %s\n", run.id.c_str(), error.c_str());
  }
  run.store_error = std::move(error);
}

bool Coordinator::AwaitingObserverCensus(RunRecord& run, absl::Time now) const {
  if (run.drained_at == absl::InfiniteFuture()) run.drained_at = now;
  if (now - run.drained_at >= options_.observer_census_wait) return false;
  return std::any_of(run.observers.begin(), run.observers.end(),
                     [&](const ObserverRecord& o) { return o.updated_at < run.drained_at; });
}

bool Coordinator::PointDue(const RunRecord& run, absl::Time now) const {
  absl::Duration since = now - run.last_point_at;
  if (since >= options_.max_point_interval) return true;
  if (since < options_.min_point_interval) return false;
  return std::all_of(run.shards.begin(), run.shards.end(),
                     [](const ShardRecord& s) { return s.fresh || s.final; });
}

void Coordinator::ReleaseFreedMemory(absl::Time now) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!released_since_trim_ || now - last_trim_ < options_.trim_interval) return;
    released_since_trim_ = false;
    last_trim_ = now;
  }
#ifdef __GLIBC__
  // glibc keeps freed heap (over several arenas: gRPC's threads each allocate in their own) for
  // reuse and rarely returns it; after agents with large hellos leave, hand it back (measured in
  // bench/RESULTS.md). Outside the lock: it walks the whole heap.
  malloc_trim(0);
#endif
}

void Coordinator::CreditStall(absl::Duration stalled) {
  if (stalled <= absl::ZeroDuration()) return;
  stalls_.fetch_add(1, std::memory_order_relaxed);
  stalled_nanos_.fetch_add(absl::ToInt64Nanoseconds(stalled), std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  absl::Time now = options_.now();
  for (auto& [id, run] : running_) {
    run.deadline += stalled;
    for (ShardRecord& shard : run.shards) {
      if (!shard.final) shard.last_telemetry = std::min(now, shard.last_telemetry + stalled);
    }
  }
}

// A lost agent's share, handed on (spec `rebalance`) to the run's agents still running.
void Coordinator::HandOnShare(RunRecord& run, ShardRecord& lost) {
  if (!run.spec.rebalance()) return;  // validation: only with the open model
  std::vector<ShardRecord*> running;
  for (ShardRecord& shard : run.shards) {
    if (!shard.final && agents_.count(shard.assignment.agent) > 0) running.push_back(&shard);
  }
  if (running.empty()) return;
  std::vector<double> parts = SplitRate(lost.assignment.rate, static_cast<int>(running.size()));
  for (size_t i = 0; i < running.size(); ++i) {
    ShardRecord& shard = *running[i];
    shard.assignment.rate += parts[i];
    if (run.starting) continue;  // its assignment, sent once stored, carries the new rate
    v1::CoordinatorMessage adjust;
    adjust.mutable_adjust()->set_run_id(run.id);
    adjust.mutable_adjust()->set_rate(shard.assignment.rate);
    agents_.at(shard.assignment.agent).link->Send(adjust);
  }
  lost.share_handed_on = true;
}

}  // namespace churnlab
