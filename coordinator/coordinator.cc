#include "coordinator/coordinator.h"

#include <google/protobuf/util/time_util.h>
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/concurrency.h"
#include "analysis/observations.h"
#include "analysis/preflight.h"
#include "analysis/verdict.h"
#include "coordinator/source_detail.h"
#include "proto/hello.h"
#include "proto/message_json.h"
#include "proto/run_spec.h"
#include "proto/telemetry_codec.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

std::string NewRunId(absl::Time now) {
  static std::mt19937 rng(std::random_device{}());
  return absl::StrCat("r-", absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()), "-",
                      absl::StrFormat("%04x", rng() & 0xffff));
}

// The engine's own bound on what follows the run's duration (the timeouts and the hold), so the
// coordinator waits exactly as long as an agent may still have connections open.
absl::Duration DrainTime(const v1::RunSpec& spec) {
  absl::StatusOr<EngineParams> params = EngineParamsFromSpec(spec);
  return params.ok() ? DrainBound(*params) : absl::ZeroDuration();
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

// An agent in summary: its scalars and the first few entries of each list, so that a listing's
// size does not grow with agents' addresses (300 agents of 4,096 source IPs each made the
// dashboard's agents frame 20 MB a second and the coordinator peak at 6 GB with 20 pages open).
// Lost agents keep only this: 256 of them with full hellos held ~80 MB.
v1::AgentInfo AgentSummary(const v1::Hello& hello) {
  constexpr int kShownListEntries = 16;
  v1::AgentInfo out;
  v1::Hello* h = out.mutable_hello();
  *h = hello;
  auto keep_first = [](google::protobuf::RepeatedPtrField<std::string>* list) {
    if (list->size() > kShownListEntries) {
      list->DeleteSubrange(kShownListEntries, list->size() - kShownListEntries);
    }
  };
  keep_first(h->mutable_source_ips());
  keep_first(h->mutable_listen_addresses());
  keep_first(h->mutable_allow_targets());
  h->clear_sysctls();
  if (auto it = hello.sysctls().find("net.ipv4.tcp_tw_reuse"); it != hello.sysctls().end()) {
    h->mutable_sysctls()->insert(*it);
  }
  out.set_source_ips_total(static_cast<uint32_t>(hello.source_ips_size()));
  out.set_listen_addresses_total(static_cast<uint32_t>(hello.listen_addresses_size()));
  return out;
}

}  // namespace

Coordinator::Coordinator(RunStore* store, Options options) : store_(store), options_(options) {}

absl::Status Coordinator::AttachAgent(const v1::Hello& hello, AgentLink* link) {
  if (absl::Status s = ValidateHello(hello); !s.ok()) return s;
  v1::AgentInfo summary = AgentSummary(hello);  // outside mu_: it copies the whole hello
  std::lock_guard<std::mutex> lock(mu_);
  if (agents_.count(hello.name()) > 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("agent name '", hello.name(), "' is taken by a live agent"));
  }
  if (agents_.size() >= options_.max_agents) {
    attaches_refused_.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrCat("the coordinator holds its maximum of ",
                                                     options_.max_agents,
                                                     " agents and observers (--max-agents)"));
  }
  agents_[hello.name()] = AgentEntry{.hello = hello,
                                     .summary = std::move(summary),
                                     .link = link,
                                     .sources = SourceAddressesOf(hello),
                                     .listening = ListenAddressesOf(hello)};
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
  v1::AgentInfo summary = AgentSummary(hello);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = agents_.find(name);
  if (it == agents_.end()) return absl::OkStatus();
  it->second.hello = hello;
  it->second.sources = SourceAddressesOf(hello);
  it->second.listening = ListenAddressesOf(hello);
  it->second.silent_since.reset();  // it speaks again
  it->second.summary = std::move(summary);
  // The settings in force during its shard are the ones its report judges by (the agent
  // re-reads them as the shard starts).
  if (ShardRecord* shard = FindShard(it->second.busy_with, name); shard && !shard->final) {
    shard->hello = hello;
  }
  return absl::OkStatus();
}

void Coordinator::DetachAgent(const std::string& name, AgentLink* link) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = agents_.find(name);
  if (it == agents_.end() || it->second.link != link) return;
  std::optional<absl::Time> lost_at = it->second.silent_since;
  if (!it->second.busy_with.empty()) {
    auto run = running_.find(it->second.busy_with);
    ShardRecord* shard = FindShard(it->second.busy_with, name);
    if (shard != nullptr && !shard->final) {
      MarkLost(run->second, *shard, "its stream closed", options_.now());
      HandOnShare(run->second, *shard);
      lost_at = options_.wall();
    }
  }
  // Lost from a run, whether its stream closed first or its silence was noticed first (then
  // the stream closes later, on a busy host seconds later): listed lost from when it was.
  if (lost_at.has_value()) {
    if (lost_.size() >= options_.max_lost_agents) {
      auto oldest = std::min_element(lost_.begin(), lost_.end(), [](const auto& a, const auto& b) {
        return a.second.at < b.second.at;
      });
      lost_.erase(oldest);
    }
    lost_[name] = LostAgent{it->second.summary, *lost_at};
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

void Coordinator::OnTelemetry(const std::string& agent, v1::ShardTelemetry telemetry) {
  // Checked where it enters, before it is kept: no peer grows a map or wraps a total here.
  if (uint64_t changed = SanitizeTelemetry(&telemetry); changed > 0) {
    telemetry_entries_refused_.fetch_add(changed, std::memory_order_relaxed);
  }
  std::lock_guard<std::mutex> lock(mu_);
  // Counted under the lock: whoever sees the count and then takes the lock sees the message's
  // effect.
  telemetry_messages_.fetch_add(1, std::memory_order_relaxed);
  auto sender = agents_.find(agent);
  if (sender != agents_.end()) sender->second.silent_since.reset();  // it speaks again
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
  bool final = telemetry.final();
  shard->latest = std::move(telemetry);
  shard->fresh = true;
  shard->last_telemetry = options_.now();
  if (final) {
    shard->final = true;
    auto it = agents_.find(agent);
    if (it != agents_.end()) it->second.busy_with.clear();
  }
}

v1::CoordinatorMessage Coordinator::LeaseFor(const std::string& agent, const v1::Ping& ping) {
  v1::CoordinatorMessage message;
  v1::Lease* lease = message.mutable_lease();
  lease->set_agent_clock_nanos(ping.agent_clock_nanos());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = agents_.find(agent);
  if (it != agents_.end()) it->second.silent_since.reset();  // it speaks again
  if (it == agents_.end() || it->second.busy_with.empty()) return message;
  ShardRecord* shard = FindShard(it->second.busy_with, agent);
  if (shard == nullptr || shard->final) return message;
  lease->set_run_id(it->second.busy_with);
  *lease->mutable_duration() =
      TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(options_.lease));
  // The agent's lease runs from its Ping, which was sent before now.
  shard->lease_until = std::max(shard->lease_until, options_.now() + options_.lease);
  return message;
}

void Coordinator::OnRefusal(const std::string& agent, const v1::Refusal& refusal) {
  std::lock_guard<std::mutex> lock(mu_);
  ShardRecord* shard = FindShard(refusal.run_id(), agent);
  if (shard == nullptr) return;
  // The reason is the agent's words, kept in the report: a sentence, not a payload, cut at a
  // character's start (never inside one).
  constexpr size_t kMaxReason = 1024;
  absl::string_view reason = refusal.reason();
  if (reason.size() > kMaxReason) {
    size_t cut = kMaxReason;
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xc0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  shard->problem = absl::StrCat("refused: ", reason);
  shard->never_ran = true;
  shard->final = true;
  auto it = agents_.find(agent);
  if (it != agents_.end()) {
    it->second.busy_with.clear();
    it->second.silent_since.reset();  // it speaks again
  }
}

absl::StatusOr<v1::StartRunResponse> Coordinator::StartRun(v1::RunSpec spec) {
  ApplyRunSpecDefaults(&spec);
  if (absl::Status s = ValidateRunSpec(spec); !s.ok()) return s;
  v1::StartRunResponse response;
  v1::RunReport first;
  // Only to match observers, so only when one is attached; before the lock: DNS may take its
  // time (kResolveTimeout a name).
  bool observers = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    observers = !observed_.empty();
  }
  analysis::RunShape shape = analysis::ShapeOf(spec);  // the one parse of the spec's strings
  const std::vector<SocketAddress> named =
      observers ? NamedTargetAddresses(shape) : std::vector<SocketAddress>{};
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<RunRecord> run = PlanRecord(std::move(spec), std::move(shape), response, named);
    if (!run.ok()) return run.status();
    first = BuildReport(*run);
    // Reserved (its agents busy, its id taken) but sent nowhere until the store has it.
    for (const ShardRecord& shard : run->shards)
      agents_.at(shard.assignment.agent).busy_with = run->id;
    std::string id = run->id;
    running_[id] = std::move(*run);
  }
  // A run is stored before any agent hears of it: one the store cannot take sends nothing and
  // frees its agents again.
  absl::Status saved = store_->Save(first);
  std::lock_guard<std::mutex> lock(mu_);
  RunRecord& run = running_.at(first.run_id());
  if (!saved.ok()) {
    store_errors_.fetch_add(1, std::memory_order_relaxed);
    for (const ShardRecord& shard : run.shards) {
      auto agent = agents_.find(shard.assignment.agent);
      if (agent != agents_.end() && agent->second.busy_with == run.id)
        agent->second.busy_with.clear();
    }
    running_.erase(run.id);
    return absl::Status(saved.code(), absl::StrCat(saved.message(), "; the run was not started"));
  }
  SendShards(run);
  return response;
}

absl::StatusOr<RunRecord> Coordinator::PlanRecord(v1::RunSpec spec, analysis::RunShape shape,
                                                  v1::StartRunResponse& response,
                                                  const std::vector<SocketAddress>& named) {
  std::vector<AgentCandidate> candidates;
  for (const auto& [name, entry] : agents_) {
    if (entry.hello.observer()) continue;  // targets reporting their host take no load
    // Lost from its last run by silence, its stream not closed yet: not offered until it
    // speaks again (a cut link would lose the next run too).
    if (entry.silent_since.has_value()) continue;
    candidates.push_back(AgentCandidate{entry.hello, entry.sources, !entry.busy_with.empty()});
  }
  absl::StatusOr<std::vector<Assignment>> plan = PlanRun(spec, shape, candidates);
  if (!plan.ok()) return plan.status();

  absl::Time now = options_.now();
  absl::Time wall = options_.wall();
  RunRecord run;
  run.id = NewRunId(wall);
  while (running_.count(run.id) > 0) run.id = NewRunId(wall);
  run.starting = true;
  run.spec = std::move(spec);
  run.shape = std::move(shape);
  run.started_at = now + options_.start_after;
  run.started_wall = wall + options_.start_after;
  run.last_point_at = run.started_at;
  run.last_save = now;
  run.deadline = run.started_at +
                 absl::Nanoseconds(TimeUtil::DurationToNanoseconds(run.spec.duration())) +
                 DrainTime(run.spec) + options_.finish_grace;
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
    if (!ObserverServesTargets(agents_.at(name).listening, run.shape, named)) continue;
    ObserverRecord record;
    record.name = name;
    const v1::Hello& hello = agents_.at(name).hello;
    record.host = hello.host();
    record.boot_id = analysis::BootIdOf(hello);
    record.sysctls.insert(hello.sysctls().begin(), hello.sysctls().end());
    record.baseline.insert(telemetry.host().counter_deltas().begin(),
                           telemetry.host().counter_deltas().end());
    record.server_baseline = telemetry.server();
    record.latest = telemetry;
    run.observers.push_back(std::move(record));
  }
  for (std::string& warning : analysis::PreflightWarnings(run.spec, run.shape, FactsOf(run))) {
    response.add_warnings(std::move(warning));
  }
  return run;
}

void Coordinator::SendShards(RunRecord& run) {
  run.starting = false;
  for (ShardRecord& record : run.shards) {
    if (run.cancel_requested && !record.final) {
      record.final = true;
      record.problem = "cancelled before it was sent";
      record.never_ran = true;
      auto agent = agents_.find(record.assignment.agent);
      if (agent != agents_.end() && agent->second.busy_with == run.id) {
        agent->second.busy_with.clear();
      }
    }
    // An agent that left while the run was being stored has its shard marked lost already.
    auto agent = agents_.find(record.assignment.agent);
    if (record.final || agent == agents_.end()) continue;
    const Assignment& a = record.assignment;
    v1::CoordinatorMessage message;
    v1::Shard* shard = message.mutable_assign();
    shard->set_run_id(run.id);
    *shard->mutable_spec() = run.spec;
    shard->set_rate(a.rate);
    shard->set_concurrency(a.concurrency);
    shard->set_max_in_flight(a.max_in_flight);
    for (const SocketAddress& ip : a.sources) shard->add_source_ips(ip.IpString());
    *shard->mutable_start_after() =
        TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(options_.start_after));
    agent->second.link->Send(message);
  }
}

absl::Status Coordinator::CancelRun(const std::string& run_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(run_id);
    if (it != running_.end() && !it->second.finishing) {
      RunRecord& run = it->second;
      run.cancel_requested = true;
      v1::CoordinatorMessage stop;
      stop.mutable_stop()->set_run_id(run_id);
      for (const ShardRecord& shard : run.shards) {
        auto agent = agents_.find(shard.assignment.agent);
        if (!run.starting && !shard.final && agent != agents_.end()) agent->second.link->Send(stop);
      }
      return absl::OkStatus();
    }
  }
  absl::StatusOr<v1::RunReport> ended = GetRun(run_id);
  if (!ended.ok()) return ended.status();
  return absl::FailedPreconditionError(
      absl::StrCat("run ", run_id, " has already ended (", Word(ended->state()), ")"));
}

std::vector<v1::RunReport> Coordinator::RunningReports() {
  std::vector<v1::RunReport> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, run] : running_) {
      v1::RunReport& report = out.emplace_back(BuildReport(run));
      if (run.point_count > 0) *report.add_series() = run.last_point;
    }
  }
  // The summaries' copies outside the lock that agents' telemetry waits for.
  for (v1::RunReport& report : out) report = ViewerSummary(report);
  return out;
}

absl::StatusOr<std::optional<int>> Coordinator::WatchRunning(const std::string& run_id,
                                                             Watcher watcher) {
  // Added under mu_: a run still in running_ is announced ended only after it leaves it.
  std::lock_guard<std::mutex> lock(mu_);
  if (running_.count(run_id) == 0) return std::nullopt;
  int id = watchers_.Add(run_id, std::move(watcher), options_.max_watches);
  if (id >= 0) return id;
  watches_refused_.fetch_add(1, std::memory_order_relaxed);
  return absl::ResourceExhaustedError(absl::StrCat(
      options_.max_watches, " watchers already follow runs (the most at once); try again"));
}

absl::StatusOr<int> Coordinator::Watch(const std::string& run_id, Watcher watcher) {
  absl::StatusOr<std::optional<int>> running = WatchRunning(run_id, watcher);
  if (!running.ok()) return running.status();
  if (running->has_value()) return **running;
  absl::StatusOr<v1::RunReport> ended = GetRun(run_id);
  if (!ended.ok()) return ended.status();
  watcher(*ended, true);
  return 0;
}

void Coordinator::MarkSilentShardsLost(RunRecord& run, absl::Time now) {
  const absl::Duration duration =
      absl::Nanoseconds(TimeUtil::DurationToNanoseconds(run.spec.duration()));
  for (ShardRecord& shard : run.shards) {
    if (shard.final ||
        now - std::max(shard.last_telemetry, run.started_at) <= options_.telemetry_silence) {
      continue;
    }
    // Its telemetry already covered the whole load: it starts nothing more, and its final
    // report comes after the drain (late on a busy host). The run's deadline still bounds it.
    absl::Duration reported =
        absl::Nanoseconds(TimeUtil::DurationToNanoseconds(shard.latest.elapsed()));
    if (duration > absl::ZeroDuration() && reported >= duration) continue;
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
      agent->second.silent_since = options_.wall();
    }
  }
}

}  // namespace churnlab
