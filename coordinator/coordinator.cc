#include "coordinator/coordinator.h"

#include <google/protobuf/util/time_util.h>
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/observations.h"
#include "analysis/preflight.h"
#include "analysis/verdict.h"
#include "proto/hello.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

std::string NewRunId(absl::Time now) {
  static std::mt19937 rng(std::random_device{}());
  return absl::StrCat("r-", absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()), "-",
                      absl::StrFormat("%04x", rng() & 0xffff));
}

absl::Duration DrainTime(const v1::RunSpec& spec) {
  auto d = [](const google::protobuf::Duration& x) {
    return absl::Nanoseconds(TimeUtil::DurationToNanoseconds(x));
  };
  return d(spec.connect_timeout()) + d(spec.io_timeout()) * spec.requests_per_connection();
}

// Marks the shard finished, with `why` and the time in its problem; its data so far is kept.
void MarkLost(const RunRecord& run, ShardRecord& shard, const std::string& why, absl::Time now) {
  shard.problem = absl::StrFormat(
      "lost %.1fs into the run: %s; its counts are those of its last telemetry, %.1fs in",
      absl::ToDoubleSeconds(now - run.started_at), why,
      absl::ToDoubleSeconds(shard.last_telemetry - run.started_at));
  shard.lost_after_s = std::max(1e-3, absl::ToDoubleSeconds(now - run.started_at));
  shard.final = true;
  shard.fresh = true;
}

// What stays of a lost agent for listings: who it was and its settings, not its lists. 256 lost
// agents with full hellos (4,096 source IPs, sysctls) held ~80 MB for as long as they stayed
// listed.
v1::Hello LostSummary(const v1::Hello& hello) {
  constexpr int kLostSourceIps = 16;
  v1::Hello out;
  out.set_name(hello.name());
  out.set_host(hello.host());
  out.set_version(hello.version());
  *out.mutable_port_range() = hello.port_range();
  out.set_fd_limit(hello.fd_limit());
  out.set_kernel_id(hello.kernel_id());
  out.set_observer(hello.observer());
  for (int i = 0; i < hello.source_ips_size() && i < kLostSourceIps; ++i) {
    out.add_source_ips(hello.source_ips(i));
  }
  return out;
}

}  // namespace

Coordinator::Coordinator(RunStore* store, Options options) : store_(store), options_(options) {}

absl::Status Coordinator::AttachAgent(const v1::Hello& hello, AgentLink* link) {
  if (absl::Status s = ValidateHello(hello); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  if (agents_.count(hello.name()) > 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("agent name '", hello.name(), "' is taken by a live agent"));
  }
  agents_[hello.name()] = AgentEntry{hello, link, ""};
  lost_.erase(hello.name());
  v1::CoordinatorMessage welcome;
  *welcome.mutable_welcome()->mutable_telemetry_interval() = TimeUtil::SecondsToDuration(1);
  link->Send(welcome);
  return absl::OkStatus();
}

absl::Status Coordinator::UpdateAgent(const std::string& name, const v1::Hello& hello) {
  if (hello.name() != name) {
    return absl::InvalidArgumentError(
        absl::StrCat("hello: agent '", name, "' cannot rename itself to '", hello.name(), "'"));
  }
  // Agents re-send their hello when a setting changes: the same limits as at attach.
  if (absl::Status s = ValidateHello(hello); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = agents_.find(name);
  if (it != agents_.end()) it->second.hello = hello;
  return absl::OkStatus();
}

void Coordinator::DetachAgent(const std::string& name, AgentLink* link) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = agents_.find(name);
  if (it == agents_.end() || it->second.link != link) return;
  if (!it->second.busy_with.empty()) {
    auto run = running_.find(it->second.busy_with);
    ShardRecord* shard = FindShard(it->second.busy_with, name);
    if (shard != nullptr && !shard->final) {
      MarkLost(run->second, *shard, "its stream closed", options_.now());
      HandOnShare(run->second, *shard);
      if (lost_.size() >= options_.max_lost_agents) {
        auto oldest = std::min_element(
            lost_.begin(), lost_.end(),
            [](const auto& a, const auto& b) { return a.second.at < b.second.at; });
        lost_.erase(oldest);
      }
      lost_[name] = LostAgent{LostSummary(it->second.hello), options_.now()};
    }
  }
  agents_.erase(it);
  observed_.erase(name);
  released_since_trim_ = true;
}

ShardRecord* Coordinator::FindShard(const std::string& run_id, const std::string& agent) {
  auto run = running_.find(run_id);
  if (run == running_.end()) return nullptr;
  auto index = run->second.shard_of.find(agent);
  return index == run->second.shard_of.end() ? nullptr : &run->second.shards[index->second];
}

void Coordinator::OnTelemetry(const std::string& agent, const v1::ShardTelemetry& telemetry) {
  telemetry_messages_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  auto sender = agents_.find(agent);
  if (sender != agents_.end() && sender->second.hello.observer()) {
    observed_[agent] = telemetry;
    for (auto& [id, run] : running_) {
      for (ObserverRecord& record : run.observers) {
        if (record.name != agent) continue;
        UpdateObserver(&record, telemetry);
        record.updated_at = options_.now();
      }
    }
    return;
  }
  ShardRecord* shard = FindShard(telemetry.run_id(), agent);
  if (shard == nullptr || shard->final) return;  // late, or for a run that has ended
  shard->latest = telemetry;
  shard->fresh = true;
  shard->last_telemetry = options_.now();
  if (telemetry.final()) {
    shard->final = true;
    auto it = agents_.find(agent);
    if (it != agents_.end()) it->second.busy_with.clear();
  }
}

void Coordinator::OnRefusal(const std::string& agent, const v1::Refusal& refusal) {
  std::lock_guard<std::mutex> lock(mu_);
  ShardRecord* shard = FindShard(refusal.run_id(), agent);
  if (shard == nullptr) return;
  // The reason is the agent's words, kept in the report: a sentence, not a payload.
  constexpr size_t kMaxReason = 1024;
  shard->problem =
      absl::StrCat("refused: ", absl::string_view(refusal.reason()).substr(0, kMaxReason));
  shard->final = true;
  auto it = agents_.find(agent);
  if (it != agents_.end()) it->second.busy_with.clear();
}

absl::StatusOr<v1::StartRunResponse> Coordinator::StartRun(v1::RunSpec spec) {
  ApplyRunSpecDefaults(&spec);
  if (absl::Status s = ValidateRunSpec(spec); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AgentCandidate> candidates;
  for (const auto& [name, entry] : agents_) {
    if (entry.hello.observer()) continue;  // targets reporting their host take no load
    candidates.push_back(AgentCandidate{entry.hello, !entry.busy_with.empty()});
  }
  absl::StatusOr<std::vector<Assignment>> plan = PlanRun(spec, candidates);
  if (!plan.ok()) return plan.status();

  absl::Time now = options_.now();
  RunRecord run;
  run.id = NewRunId(now);
  while (running_.count(run.id) > 0) run.id = NewRunId(now);
  run.spec = spec;
  run.started_at = now + options_.start_after;
  run.last_point_at = run.started_at;
  run.last_save = now;
  run.deadline = run.started_at +
                 absl::Nanoseconds(TimeUtil::DurationToNanoseconds(spec.duration())) +
                 DrainTime(spec) + options_.finish_grace;
  v1::StartRunResponse response;
  response.set_run_id(run.id);
  for (const Assignment& a : *plan) {
    const AgentEntry& agent = agents_.at(a.agent);
    ShardRecord shard_record;
    shard_record.last_telemetry = run.started_at;
    shard_record.assignment = a;
    shard_record.host = agent.hello.host();
    shard_record.hello = agent.hello;
    run.shard_of[a.agent] = run.shards.size();
    run.shards.push_back(std::move(shard_record));
    response.add_agent_names(a.agent);
  }
  for (const auto& [name, telemetry] : observed_) {
    if (!ObserverServesTargets(agents_.at(name).hello, spec)) continue;
    ObserverRecord record;
    record.name = name;
    const v1::Hello& hello = agents_.at(name).hello;
    record.host = hello.host();
    record.sysctls.insert(hello.sysctls().begin(), hello.sysctls().end());
    record.baseline.insert(telemetry.host().counter_deltas().begin(),
                           telemetry.host().counter_deltas().end());
    record.latest = telemetry;
    run.observers.push_back(std::move(record));
  }
  for (std::string& warning : analysis::PreflightWarnings(run.spec, FactsOf(run))) {
    response.add_warnings(std::move(warning));
  }
  // A run is stored before any agent hears of it: one the store cannot take sends nothing and
  // reserves no agent.
  if (absl::Status s = store_->Save(BuildReport(run)); !s.ok()) {
    store_errors_.fetch_add(1, std::memory_order_relaxed);
    return absl::Status(s.code(), absl::StrCat(s.message(), "; the run was not started"));
  }
  for (const Assignment& a : *plan) {
    AgentEntry& agent = agents_.at(a.agent);
    agent.busy_with = run.id;
    v1::CoordinatorMessage message;
    v1::Shard* shard = message.mutable_assign();
    shard->set_run_id(run.id);
    *shard->mutable_spec() = spec;
    shard->set_rate(a.rate);
    shard->set_concurrency(a.concurrency);
    shard->set_max_in_flight(a.max_in_flight);
    for (const std::string& ip : a.source_ips) shard->add_source_ips(ip);
    *shard->mutable_start_after() =
        TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(options_.start_after));
    agent.link->Send(message);
  }
  running_[run.id] = std::move(run);
  return response;
}

absl::StatusOr<v1::RunReport> Coordinator::GetRun(const std::string& run_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(run_id);
    if (it != running_.end()) {
      v1::RunReport report = BuildReport(it->second);
      absl::StatusOr<std::vector<v1::SeriesPoint>> points = store_->LoadPoints(run_id);
      if (!points.ok()) return points.status();
      report.mutable_series()->Assign(points->begin(), points->end());
      for (const auto& [seq, point] : it->second.unstored_points) *report.add_series() = point;
      return report;
    }
    auto unsaved = unsaved_.find(run_id);
    if (unsaved != unsaved_.end()) {
      v1::RunReport report = unsaved->second.report;
      absl::StatusOr<std::vector<v1::SeriesPoint>> points = store_->LoadPoints(run_id);
      if (points.ok()) report.mutable_series()->Assign(points->begin(), points->end());
      for (const auto& [seq, point] : unsaved->second.record.unstored_points) {
        *report.add_series() = point;
      }
      return report;
    }
  }
  return store_->Load(run_id);
}

absl::StatusOr<std::vector<v1::RunSummary>> Coordinator::ListRuns() {
  absl::StatusOr<std::vector<v1::RunSummary>> runs = store_->List();
  std::lock_guard<std::mutex> lock(mu_);
  if (unsaved_.empty()) return runs;
  std::vector<v1::RunSummary> out;
  // Newest first, like the store's list: run ids sort by their start time.
  for (auto it = unsaved_.rbegin(); it != unsaved_.rend(); ++it) {
    const v1::RunReport& r = it->second.report;
    v1::RunSummary& summary = out.emplace_back();
    summary.set_run_id(r.run_id());
    summary.set_name(r.spec().name());
    summary.set_state(r.state());
    summary.set_started_at(r.started_at());
    summary.set_verdict(r.verdict());
    summary.set_achieved_rate(r.achieved_rate());
    summary.set_requested_rate(r.requested_rate());
  }
  if (runs.ok()) {
    for (v1::RunSummary& summary : *runs) {
      if (unsaved_.count(summary.run_id()) == 0) out.push_back(std::move(summary));
    }
  }
  return out;
}

absl::Status Coordinator::CancelRun(const std::string& run_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(run_id);
  if (it == running_.end()) {
    absl::StatusOr<v1::RunReport> stored = store_->Load(run_id);
    if (!stored.ok()) return stored.status();
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run_id, " has already ended (", stored->state(), ")"));
  }
  RunRecord& run = it->second;
  run.cancel_requested = true;
  v1::CoordinatorMessage stop;
  stop.mutable_stop()->set_run_id(run_id);
  for (const ShardRecord& shard : run.shards) {
    auto agent = agents_.find(shard.assignment.agent);
    if (!shard.final && agent != agents_.end()) agent->second.link->Send(stop);
  }
  return absl::OkStatus();
}

std::vector<v1::AgentInfo> Coordinator::ListAgents() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::AgentInfo> out;
  absl::Time now = options_.now();
  auto rfc3339 = [](absl::Time t) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
  };
  for (const auto& [name, entry] : agents_) {
    v1::AgentInfo info;
    *info.mutable_hello() = entry.hello;
    info.set_state(entry.hello.observer()    ? "observer"
                   : entry.busy_with.empty() ? "idle"
                                             : "running");
    info.set_busy_with(entry.busy_with.empty() ? info.state() : entry.busy_with);
    // An attached agent's stream is alive: gRPC keepalive drops a silent one within ~2.5 s.
    info.set_last_seen(rfc3339(now));
    out.push_back(std::move(info));
  }
  for (const auto& [name, lost] : lost_) {
    v1::AgentInfo info;
    *info.mutable_hello() = lost.hello;
    info.set_state("lost");
    info.set_busy_with("lost");
    info.set_last_seen(rfc3339(lost.at));
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<v1::RunReport> Coordinator::RunningReports() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::RunReport> out;
  for (const auto& [id, run] : running_) {
    v1::RunReport report = BuildReport(run);
    if (run.point_count > 0) *report.add_series() = run.last_point;
    out.push_back(std::move(report));
  }
  return out;
}

absl::StatusOr<int> Coordinator::Watch(const std::string& run_id, Watcher watcher) {
  std::unique_lock<std::mutex> lock(mu_);
  if (running_.count(run_id) == 0) {
    lock.unlock();
    absl::StatusOr<v1::RunReport> stored = store_->Load(run_id);
    if (!stored.ok()) return stored.status();
    watcher(*stored, true);
    return 0;
  }
  int id = next_watch_id_++;
  watchers_[id] = WatchEntry{run_id, std::move(watcher)};
  return id;
}

int Coordinator::WatchAll(Watcher watcher) {
  std::lock_guard<std::mutex> lock(mu_);
  int id = next_watch_id_++;
  watchers_[id] = WatchEntry{"", std::move(watcher)};
  return id;
}

void Coordinator::Unwatch(int watch_id) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.erase(watch_id);
}

void Coordinator::Notify(const std::string& run_id, const v1::RunReport& report, bool final) {
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    bool every_run = it->second.run_id.empty();
    if (!every_run && it->second.run_id != run_id) {
      ++it;
      continue;
    }
    it->second.watcher(report, final);
    it = final && !every_run ? watchers_.erase(it) : std::next(it);
  }
}

bool Coordinator::PointDue(const RunRecord& run, absl::Time now) const {
  absl::Duration since = now - run.last_point_at;
  if (since >= options_.max_point_interval) return true;
  if (since < options_.min_point_interval) return false;
  return std::all_of(run.shards.begin(), run.shards.end(),
                     [](const ShardRecord& s) { return s.fresh || s.final; });
}

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
    v1::CoordinatorMessage adjust;
    adjust.mutable_adjust()->set_run_id(run.id);
    adjust.mutable_adjust()->set_rate(shard.assignment.rate);
    agents_.at(shard.assignment.agent).link->Send(adjust);
  }
  lost.share_handed_on = true;
}

void Coordinator::MarkSilentShardsLost(RunRecord& run, absl::Time now) {
  for (ShardRecord& shard : run.shards) {
    if (shard.final ||
        now - std::max(shard.last_telemetry, run.started_at) <= options_.telemetry_silence) {
      continue;
    }
    MarkLost(run, shard,
             absl::StrCat("no telemetry for ", absl::FormatDuration(options_.telemetry_silence)),
             now);
    HandOnShare(run, shard);
    // Its stream is still open: tell it to stop, and it is free for the next run.
    auto agent = agents_.find(shard.assignment.agent);
    if (agent != agents_.end() && agent->second.busy_with == run.id) {
      v1::CoordinatorMessage stop;
      stop.mutable_stop()->set_run_id(run.id);
      agent->second.link->Send(stop);
      agent->second.busy_with.clear();
    }
  }
}

void Coordinator::Tick(absl::Time now) {
  TickRuns(now);
  ReleaseFreedMemory(now);
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

void Coordinator::TickRuns(absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  RetryUnsaved();
  for (auto it = running_.begin(); it != running_.end();) {
    RunRecord& run = it->second;
    if (now < run.started_at) {
      ++it;
      continue;
    }
    MarkSilentShardsLost(run, now);
    bool all_final = std::all_of(run.shards.begin(), run.shards.end(),
                                 [](const ShardRecord& s) { return s.final; });
    if (!all_final && now >= run.deadline) {
      for (ShardRecord& shard : run.shards) {
        if (shard.final) continue;
        shard.final = true;
        shard.problem = "sent no final telemetry by the run's deadline";
      }
      all_final = true;
    }
    if (!all_final && !PointDue(run, now)) {
      ++it;
      continue;
    }
    if (all_final && AwaitingObserverCensus(run, now)) {
      ++it;
      continue;
    }
    v1::RunReport report = BuildReport(run);
    AppendSeriesPoint(&run, report, absl::ToDoubleSeconds(now - run.started_at));
    run.last_point_at = now;
    // The point now, the rest of the report every save_every: a coordinator killed mid-run
    // leaves the run's data up to here. A failed write is kept and tried again each tick.
    run.unstored_points.emplace_back(run.point_count - 1, run.last_point);
    StorePoints(run);
    if (all_final) {
      FinishRun(run);
      it = running_.erase(it);
      released_since_trim_ = true;
      continue;
    }
    if (now - run.last_save >= options_.save_every) {
      absl::Status saved = store_->Save(report);
      if (!saved.ok()) {
        NoteStoreError(run, saved);
      } else if (run.unstored_points.empty() && !run.store_error.empty()) {
        std::fprintf(stderr, "churnlab-coordinator: run %s: the run store writes again\n",
                     run.id.c_str());
        run.store_error.clear();
      }
      run.last_save = now;
    }
    // Watchers get the newest point only; they have seen the others.
    *report.add_series() = run.last_point;
    Notify(run.id, report, false);
    ++it;
  }
}

bool Coordinator::AwaitingObserverCensus(RunRecord& run, absl::Time now) const {
  if (run.drained_at == absl::InfiniteFuture()) run.drained_at = now;
  if (now - run.drained_at >= options_.observer_census_wait) return false;
  return std::any_of(run.observers.begin(), run.observers.end(),
                     [&](const ObserverRecord& o) { return o.updated_at < run.drained_at; });
}

void Coordinator::StorePoints(RunRecord& run) {
  while (!run.unstored_points.empty()) {
    const auto& [seq, point] = run.unstored_points.front();
    absl::Status s = store_->AppendPoint(run.id, seq, point);
    if (!s.ok()) {
      NoteStoreError(run, s);
      break;
    }
    run.unstored_points.pop_front();
  }
  if (run.unstored_points.size() > kMaxUnstoredPoints) {
    size_t drop = run.unstored_points.size() - kMaxUnstoredPoints;
    run.unstored_points.erase(run.unstored_points.begin(), run.unstored_points.begin() + drop);
    run.dropped_points += drop;
  }
}

void Coordinator::NoteStoreError(RunRecord& run, const absl::Status& status) {
  store_errors_.fetch_add(1, std::memory_order_relaxed);
  std::string error = std::string(status.message());
  if (run.dropped_points > 0) {
    absl::StrAppend(&error, " (", run.dropped_points, " series points lost)");
  }
  if (run.store_error != error) {
    std::fprintf(stderr, "churnlab-coordinator: run %s: %s\n", run.id.c_str(), error.c_str());
  }
  run.store_error = std::move(error);
}

void Coordinator::RetryUnsaved() {
  for (auto it = unsaved_.begin(); it != unsaved_.end();) {
    Unsaved& u = it->second;
    StorePoints(u.record);
    if (!u.record.unstored_points.empty()) return;  // still failing: try again next tick
    u.report.clear_store_error();
    absl::Status saved = store_->Save(u.report);
    if (!saved.ok()) return;
    std::fprintf(stderr, "churnlab-coordinator: run %s: stored at last, the store writes again\n",
                 it->first.c_str());
    it = unsaved_.erase(it);
  }
}

void Coordinator::FinishRun(RunRecord& run) {
  bool any_ran = std::any_of(run.shards.begin(), run.shards.end(),
                             [](const ShardRecord& s) { return s.latest.sources_size() > 0; });
  run.state = run.cancel_requested ? "cancelled" : any_ran ? "completed" : "failed";
  for (const ShardRecord& shard : run.shards) {
    auto agent = agents_.find(shard.assignment.agent);
    if (agent != agents_.end() && agent->second.busy_with == run.id)
      agent->second.busy_with.clear();
  }
  // Observations read the series (connect() slowing as ports fill), so it is attached first:
  // what the store holds, then what it could not take yet.
  v1::RunReport report = BuildReport(run);
  absl::StatusOr<std::vector<v1::SeriesPoint>> points = store_->LoadPoints(run.id);
  if (points.ok()) report.mutable_series()->Assign(points->begin(), points->end());
  for (const auto& [seq, point] : run.unstored_points) *report.add_series() = point;
  analysis::JudgeRun(&report);
  for (std::string& sentence : analysis::Observe(report)) {
    report.add_observations(std::move(sentence));
  }
  v1::RunReport stored = report;
  stored.clear_series();  // the points are stored one by one
  stored.clear_store_error();
  absl::Status saved =
      run.unstored_points.empty() ? store_->Save(stored) : absl::UnavailableError(run.store_error);
  if (!saved.ok()) {
    NoteStoreError(run, saved);
    report.set_store_error(run.store_error);
    report.clear_observations();
    for (std::string& sentence : analysis::Observe(report)) {
      report.add_observations(std::move(sentence));
    }
    unsaved_[run.id] = Unsaved{std::move(stored), run};
  } else {
    report.clear_store_error();
  }
  Notify(run.id, report, true);
}

}  // namespace churnlab
