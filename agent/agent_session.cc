#include "agent/agent_session.h"

#include <google/protobuf/util/time_util.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/engine_processes.h"
#include "agent/port_plan.h"
#include "agent/shard_telemetry.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "host/host_facts.h"
#include "proto/hello.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

}  // namespace

AgentSession::AgentSession(Options options)
    : options_(std::move(options)),
      offered_([](const std::vector<SocketAddress>& ips) {
        return absl::flat_hash_set<SocketAddress>(ips.begin(), ips.end());
      }(SourceAddressesOf(options_.link.hello))),
      link_(LinkOptions(), this) {}

CoordinatorSession::Options AgentSession::LinkOptions() {
  CoordinatorSession::Options link = options_.link;
  if (link.refresh_settings) {
    link.refresh_settings = [this, fill = link.refresh_settings](v1::Hello* hello) {
      fill(hello);
      AddIdleCensus(hello);
    };
  }
  return link;
}

void AgentSession::AddIdleCensus(v1::Hello* hello) {
  if (!running_run().empty()) return;  // the shard's telemetry counts the host then
  std::lock_guard<std::mutex> lock(census_mu_);
  const absl::Time now = options_.link.now();
  if (now >= idle_census_due_) {
    auto [low, high] = LocalPortRange();
    const int64_t started = ThreadCpuNanos();
    absl::StatusOr<RangeUse> range = TakeRangeUse(low, high);
    // Every 2 s, or 50 times its own CPU cost apart on a host whose socket table is large (the
    // kernel walks every socket): at most 2% of a core, and at least every 30 s. By CPU, not
    // wall time: a busy CPU stretched one census to over a second, and the next came ~60 s
    // later, when the ports it should have shown held were free again.
    idle_census_due_ =
        now + absl::Nanoseconds(CensusGapNanos(ThreadCpuNanos() - started, 50, 2'000'000'000));
    idle_census_.reset();
    if (range.ok()) idle_census_ = PortsAtStartOf(*range);
  }
  if (idle_census_.has_value()) *hello->mutable_range_held() = *idle_census_;
}

AgentSession::~AgentSession() {
  Shutdown();
  StopShard();
}

void AgentSession::Shutdown() {
  link_.Shutdown();
  std::lock_guard<std::mutex> lock(mu_);
  stop_requested_ = true;
  cv_.notify_all();
}

std::string AgentSession::running_run() {
  std::lock_guard<std::mutex> lock(mu_);
  return running_run_;
}

void AgentSession::OnDetached() {
  std::string interrupted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted = running_run_;
  }
  StopShard();
  if (!interrupted.empty() && !link_.shutting_down()) {
    link_.Log(absl::StrCat("run ", interrupted, ": lost the coordinator; stopped all load"));
  }
}

void AgentSession::OnStop(const v1::Stop& stop) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_run_ == stop.run_id()) stop_requested_ = true;
  cv_.notify_all();
}

bool AgentSession::ShouldLeave() {
  std::unique_lock<std::mutex> lock(mu_);
  if (options_.exit_when_idle <= absl::ZeroDuration() || runs_done_ == 0 || !running_run_.empty() ||
      options_.link.now() - last_run_end_ < options_.exit_when_idle) {
    return false;
  }
  int runs = runs_done_;
  lock.unlock();
  link_.Log(absl::StrCat("idle for ", absl::FormatDuration(options_.exit_when_idle), " after ",
                         runs, " run(s), as --exit-when-idle asked; leaving"));
  Shutdown();
  return true;
}

void AgentSession::Refuse(const std::string& run_id, const std::string& reason) {
  link_.Log(absl::StrCat("refused run ", run_id, ": ", reason));
  v1::AgentMessage message;
  message.mutable_refusal()->set_run_id(run_id);
  message.mutable_refusal()->set_reason(reason);
  link_.Send(message);
}

absl::Status AgentSession::CheckShard(const v1::Shard& shard, const absl::StatusOr<RangeUse>& range,
                                      EngineParams* params, std::vector<NamedTarget>* names) const {
  absl::StatusOr<EngineParams> p = EngineParamsFromShard(shard);
  if (!p.ok()) return p.status();
  *names = p->named_targets;
  // Names resolve here, where the connections go from; DNS cannot widen the allow-list: every
  // address a name has must be inside it.
  std::vector<Resolution> resolved;
  RETURN_IF_ERROR(ResolveEngineTargets(&*p, &resolved));
  if (absl::Status allowed = CheckTargetsAllowed(p->targets, options_.allow_targets);
      !allowed.ok()) {
    return allowed;
  }
  if (options_.max_rate > 0 && shard.rate() > options_.max_rate) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "rate %.1f conn/s is above this agent's --max-rate %.1f", shard.rate(), options_.max_rate));
  }
  int64_t in_flight = p->rate > 0 ? p->max_in_flight : p->concurrency;
  if (options_.max_in_flight > 0 && in_flight > options_.max_in_flight) {
    return absl::PermissionDeniedError(
        absl::StrCat(p->rate > 0 ? "max_in_flight " : "concurrency ", in_flight,
                     " is above this agent's --max-in-flight ", options_.max_in_flight));
  }
  // The closed model has no rate to check: the engine paces its starts under the cap.
  p->max_rate = options_.max_rate;
  p->leased = true;
  for (const SocketAddress& ip : p->source_ips) {
    if (!offered_.contains(ip)) {
      return absl::PermissionDeniedError(
          absl::StrCat("source IP ", ip.IpString(), " is not one this agent offers"));
    }
  }
  p->threads = std::min<int>(options_.threads, p->rate > 0 ? p->max_in_flight : p->concurrency);
  // Bind mode engine: the ports this host lets it pick, read as the shard starts.
  if (p->bind_mode == BindMode::kEngine) {
    ASSIGN_OR_RETURN(p->ports, HostPortPlan(*p, range));
  }
  *params = *std::move(p);
  return absl::OkStatus();
}

void AgentSession::OnAssign(const v1::Shard& shard) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_run_.empty()) {
      const std::string busy = absl::StrCat("busy with run ", running_run_);
      return Refuse(shard.run_id(), busy);
    }
  }
  // Checked where it enters, before any arithmetic on it: seconds * 1e9 of a peer's number can
  // overflow.
  const google::protobuf::Duration& after = shard.start_after();
  if (after.seconds() < 0 || after.nanos() < 0 || after.seconds() > kMaxStartAfterSeconds) {
    return Refuse(shard.run_id(), absl::StrCat("start_after ", after.seconds(), " s is not in [0, ",
                                               kMaxStartAfterSeconds, "] s"));
  }
  // The start is counted from now, whatever the check and the census take on the way.
  const auto start_at = std::chrono::steady_clock::now() +
                        std::chrono::nanoseconds(TimeUtil::DurationToNanoseconds(after));
  StopShard();  // joins a finished previous shard thread
  std::lock_guard<std::mutex> lock(mu_);
  running_run_ = shard.run_id();
  stop_requested_ = false;
  engine_ = nullptr;
  shard_thread_ = std::thread(&AgentSession::PrepareShard, this, shard, start_at);
}

void AgentSession::PrepareShard(v1::Shard shard, std::chrono::steady_clock::time_point start_at) {
  // While the check resolves names (up to kResolveTimeout each), the coordinator hears that
  // the shard is alive: its telemetry so far, nothing made yet, each telemetry interval.
  std::mutex prepared_mu;
  std::condition_variable prepared_cv;
  bool prepared = false;
  std::thread heartbeat([&] {
    std::unique_lock<std::mutex> lock(prepared_mu);
    while (!prepared_cv.wait_for(lock, absl::ToChronoNanoseconds(options_.link.telemetry_interval),
                                 [&] { return prepared; })) {
      v1::AgentMessage message;
      message.mutable_telemetry()->set_run_id(shard.run_id());
      link_.Send(message);
    }
  });
  // The port range's use, taken once: bind mode engine's plan leaves out its bind() ports, and
  // the report's census at the start counts them.
  auto [low, high] = LocalPortRange();
  absl::StatusOr<RangeUse> range = TakeRangeUse(low, high);
  EngineParams params;
  std::vector<NamedTarget> names;
  absl::Status checked = CheckShard(shard, range, &params, &names);
  absl::StatusOr<ShardEnginePtr> engine =
      checked.ok() ? MakeEngine(params) : absl::StatusOr<ShardEnginePtr>(checked);
  {
    std::lock_guard<std::mutex> lock(prepared_mu);
    prepared = true;
  }
  prepared_cv.notify_all();
  heartbeat.join();
  if (!engine.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_run_.clear();
    }
    return Refuse(shard.run_id(), std::string(engine.status().message()));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    engine_ = engine->get();
  }
  RunShard(shard.run_id(), *std::move(engine), start_at, std::move(names), std::move(range));
}

absl::StatusOr<ShardEnginePtr> AgentSession::MakeEngine(const EngineParams& params) {
  int processes = ProcessesNeeded(params, static_cast<uint64_t>(FdLimit()));
  if (processes <= 1) {
    ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(params));
    return ShardEnginePtr(std::move(engine));
  }
  // The engine beside this binary, as installed and as built.
  char self[4096] = {};
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string dir = n > 0 ? std::string(self, n) : std::string();
  dir = dir.substr(0, dir.rfind('/') + 1);
  link_.Log(absl::StrCat("shard of ", params.rate > 0 ? params.max_in_flight : params.concurrency,
                         " connections past this process's fd limit of ", FdLimit(), ": ",
                         processes, " engine processes"));
  ASSIGN_OR_RETURN(std::unique_ptr<EngineProcesses> group,
                   EngineProcesses::Create(params, processes, dir + "churnlab-churn"));
  return ShardEnginePtr(std::move(group));
}

void AgentSession::RunShard(std::string run_id, ShardEnginePtr engine,
                            std::chrono::steady_clock::time_point start_at,
                            std::vector<NamedTarget> names, absl::StatusOr<RangeUse> range) {
  const absl::Duration start_after = absl::FromChrono(std::max(
      std::chrono::steady_clock::duration::zero(), start_at - std::chrono::steady_clock::now()));
  link_.Log(absl::StrCat("run ", run_id, ": starting in ", absl::FormatDuration(start_after)));
  // The settings in force for this run (a sysctl changed just before it), ahead of everything
  // else the shard sends; then the engine starts nothing until the coordinator answers a ping.
  link_.RefreshHello();
  SendPing();
  // What the host holds before the first connection (an earlier run's TIME_WAIT, ports other
  // programs took with bind()), taken while the start is still ahead (`range`, as the shard came).
  auto [low, high] = LocalPortRange();
  absl::StatusOr<SocketCensus> toward_targets = TakeSocketCensus(
      engine->params().targets, nullptr,
      range.ok() && range->bind_taken_ports ? range->bind_taken_ports.get() : nullptr);
  for (const absl::Status& status : {toward_targets.status(), range.status()}) {
    if (!status.ok()) {
      link_.Log(absl::StrCat("run ", run_id, ": no socket census before the start (",
                             status.message(),
                             "): the report cannot say which ports were taken already"));
    }
  }
  if (range.ok() && !range->bind_taken_known) {
    link_.Log(absl::StrCat("run ", run_id, ": ", range->in_use,
                           " ports of the range are held on this host, and which of them bind() "
                           "took is unknown (",
                           range->bind_taken_unknown_why,
                           "): the report can only bound what they take"));
  }
  bool stopped_before_start;
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopped_before_start = cv_.wait_until(lock, start_at, [&] { return stop_requested_; });
  }
  ShardTelemetryCollector telemetry(run_id, engine->params().targets,
                                    high >= low && low > 0 ? high - low + 1 : 0);
  telemetry.SetPortsAtStart(toward_targets, range);
  telemetry.SetDestinations(engine->params().targets, engine->params().target_names);
  std::unique_ptr<NameWatch> watch =
      stopped_before_start ? nullptr : WatchNames(run_id, engine->params(), std::move(names));
  if (!stopped_before_start) {
    engine->Start();
    StreamTelemetry(run_id, *engine, telemetry, watch.get());
  }
  EngineSnapshot final_snapshot = stopped_before_start ? engine->Snapshot() : engine->Wait();
  if (watch != nullptr) TakeLookups(run_id, *watch, *engine, telemetry);
  v1::AgentMessage last;
  *last.mutable_telemetry() = telemetry.Collect(final_snapshot, true);
  link_.Send(last);
  link_.Log(absl::StrCat("run ", run_id, ": done"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_run_.clear();
    engine_ = nullptr;
    ++runs_done_;
    last_run_end_ = options_.link.now();
  }
  watch.reset();  // a lookup under way ends within kResolveTimeout: after the report is out
}

std::unique_ptr<NameWatch> AgentSession::WatchNames(const std::string& run_id,
                                                    const EngineParams& params,
                                                    std::vector<NamedTarget> names) {
  if (names.empty() || params.resolve_interval <= absl::ZeroDuration()) return nullptr;
  return std::make_unique<NameWatch>(
      DestinationTable(params.targets, params.target_names), std::move(names),
      params.resolve_interval,
      [this](const SocketAddress& a) {
        return CheckTargetsAllowed({a}, options_.allow_targets).ok();
      },
      [this, run_id](const std::string& note) {
        link_.Log(absl::StrCat("run ", run_id, ": ", note));
      });
}

void AgentSession::TakeLookups(const std::string& run_id, NameWatch& watch, ShardEngine& engine,
                               ShardTelemetryCollector& telemetry) {
  if (std::optional<NameWatch::Found> found = watch.Take(); found.has_value()) {
    if (engine.UpdateDestinations(found->update)) {
      telemetry.SetDestinations(found->targets, found->names);
    } else {
      link_.Log(absl::StrCat("run ", run_id, ": the engine did not take the destinations a ",
                             "lookup found (", found->update.added.size(), " new of ",
                             found->targets.size(), "); it keeps its own"));
    }
  }
  const uint32_t lookups = watch.rounds() + 1;  // the first was the shard's check
  const std::vector<uint32_t> failures = watch.failures();
  for (size_t i = 0; i < watch.names().size() && i < failures.size(); ++i) {
    const NamedTarget& name = watch.names()[i];
    telemetry.SetLookups(absl::StrCat(name.host, ":", name.port), lookups, failures[i]);
  }
}

void AgentSession::StreamTelemetry(const std::string& run_id, ShardEngine& engine,
                                   ShardTelemetryCollector& telemetry, NameWatch* watch) {
  uint32_t processes_lost = 0;
  bool stopped = false;
  while (!engine.Done()) {
    bool stop;
    {
      // A stop wakes the wait once; after it, the engine drains at the telemetry's own beat.
      std::unique_lock<std::mutex> lock(mu_);
      stop = cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.link.telemetry_interval),
                          [&] { return stop_requested_ && !stopped; });
    }
    // Outside the session's lock: the engine's exchanges with its processes have deadlines of
    // their own, and OnLease, OnAdjust and OnStop never wait behind them.
    if (stop && !stopped) {
      engine.Stop();
      stopped = true;
    }
    // From the thread that polls the engine, on purpose: an agent whose polling is wedged pings
    // no more, so its engine's leases lapse within the dead-man limit.
    SendPing();
    EngineSnapshot now = engine.Snapshot();
    if (now.processes_lost > processes_lost) {
      processes_lost = now.processes_lost;
      link_.Log(absl::StrCat("run ", run_id, ": ", processes_lost, " of ", now.processes,
                             " engine processes lost (no answer within ",
                             absl::FormatDuration(EngineProcesses::kAnswerDeadline),
                             ", so killed, or died); the others run on"));
    }
    if (watch != nullptr) TakeLookups(run_id, *watch, engine, telemetry);
    v1::AgentMessage message;
    *message.mutable_telemetry() = telemetry.Collect(now, false);
    link_.Send(message);
  }
}

void AgentSession::StopShard() {
  std::thread finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_requested_ = true;
    cv_.notify_all();
    finished = std::move(shard_thread_);
  }
  if (finished.joinable()) finished.join();
}

void AgentSession::SendPing() {
  v1::AgentMessage message;
  int64_t now = SystemClock().NowNanos();
  message.mutable_ping()->set_agent_clock_nanos(now);
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_ping_nanos_ = now;
  }
  link_.Send(message);
}

void AgentSession::OnLease(const v1::Lease& lease) {
  std::lock_guard<std::mutex> lock(mu_);
  // Only a clock this agent sent: a coordinator cannot grant a lease from the future.
  int64_t sent = lease.agent_clock_nanos();
  if (running_run_.empty() || lease.run_id() != running_run_ || engine_ == nullptr || sent <= 0 ||
      sent > last_ping_nanos_) {
    return;
  }
  // The coordinator's lease, checked where it enters (its seconds before any arithmetic on
  // them): never longer than this agent's own limit.
  int64_t limit = absl::ToInt64Nanoseconds(options_.lease);
  const google::protobuf::Duration& d = lease.duration();
  if (d.seconds() < 0 || d.nanos() < 0 || (d.seconds() == 0 && d.nanos() == 0)) return;
  int64_t granted = d.seconds() >= limit / 1'000'000'000 + 1
                        ? limit
                        : std::min(limit, TimeUtil::DurationToNanoseconds(d));
  engine_->ExtendLease(sent + granted);
}

void AgentSession::OnAdjust(const v1::Adjust& adjust) {
  double rate = adjust.rate();
  // Checked where it enters: `rate > max` is false for NaN, and the pacer cannot schedule
  // infinity.
  if (!IsValidRate(rate)) {
    link_.Log(absl::StrFormat("run %s: refused a rate change to %g conn/s (not in (0, %.0f])",
                              adjust.run_id(), rate, kMaxRate));
    return;
  }
  if (options_.max_rate > 0 && rate > options_.max_rate) {
    link_.Log(absl::StrFormat("run %s: asked for %.1f conn/s; --max-rate holds it at %.1f",
                              adjust.run_id(), rate, options_.max_rate));
    rate = options_.max_rate;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (running_run_ != adjust.run_id() || engine_ == nullptr) return;
  if (!engine_->ChangeRate(rate)) {
    link_.Log(
        absl::StrFormat("run %s: cannot take a rate change to %.1f conn/s here (not "
                        "running, closed model, stages, or split over engine processes)",
                        adjust.run_id(), rate));
    return;
  }
  link_.Log(absl::StrFormat("run %s: rate now %.1f conn/s (a lost agent's share)", adjust.run_id(),
                            rate));
}

}  // namespace churnlab
