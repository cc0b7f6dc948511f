#include "agent/engine.h"

#include <algorithm>
#include <limits>

#include "agent/engine_worker.h"
#include "common/status_macros.h"

namespace churnlab {

Engine::Engine(EngineParams params, Clock& clock)
    : params_(std::move(params)),
      clock_(clock),
      lease_until_nanos_(params_.leased ? 0 : std::numeric_limits<int64_t>::max()),
      destinations_(params_.targets.size()),
      schedule_(Pacer::For(params_)) {}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(EngineParams params, OsSysCalls& sys,
                                                       Clock& clock) {
  RETURN_IF_ERROR(ValidateEngineParams(params));
  RETURN_IF_ERROR(ValidatePortPlan(params));
  if (!params.named_targets.empty()) {
    return absl::FailedPreconditionError(
        "targets given by name must be resolved first (ResolveEngineTargets)");
  }
  // Sources inside a prefix routed `local` but on no interface (IPv6 AnyIP) bind only with
  // FREEBIND; the others keep the kernel's check that the address is still this host's.
  std::vector<bool> free_bind;
  for (const SocketAddress& ip : params.source_ips) {
    ASSIGN_OR_RETURN(LocalBinding binding, CheckLocalBinding(ip));
    free_bind.push_back(binding == LocalBinding::kRoutedLocal);
  }
  std::unique_ptr<Engine> engine(new Engine(std::move(params), clock));
  for (int i = 0; i < engine->params_.threads; ++i) {
    engine->workers_.push_back(std::make_unique<EngineWorker>(engine->params_, free_bind, i,
                                                              engine->params_.threads, sys, clock));
    RETURN_IF_ERROR(engine->workers_.back()->Init());
  }
  return engine;
}

Engine::~Engine() {
  Stop();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Engine::Start() {
  int64_t start = clock_.NowNanos();
  start_nanos_.store(start);
  running_.store(static_cast<int>(workers_.size()));
  started_.store(true);
  for (auto& worker : workers_) {
    threads_.emplace_back([this, w = worker.get(), start] {
      w->Run(start, stop_, lease_until_nanos_);
      // The run ends when its last worker does; record that before counting this one out.
      int64_t now = clock_.NowNanos();
      int64_t seen = end_nanos_.load();
      while (seen < now && !end_nanos_.compare_exchange_weak(seen, now)) {
      }
      running_.fetch_sub(1);
    });
  }
}

EngineSnapshot Engine::Snapshot() const {
  EngineSnapshot out;
  for (const auto& worker : workers_) worker->AddTo(&out);
  if (started_.load()) {
    int64_t end = Done() ? end_nanos_.load() : clock_.NowNanos();
    out.elapsed_nanos = end - start_nanos_.load();
  }
  return out;
}

void Engine::Stop() { stop_.store(true); }

void Engine::ExtendLease(int64_t until_nanos) {
  if (!params_.leased) return;
  int64_t seen = lease_until_nanos_.load();
  while (seen < until_nanos && !lease_until_nanos_.compare_exchange_weak(seen, until_nanos)) {
  }
}

bool Engine::ChangeRate(double rate) {
  // A staged profile has no one rate to change (validation refuses rebalance with stages).
  // A rate that is not a finite positive number (NaN compares false with everything) is no
  // rate; the agent refuses it before it gets here.
  if (params_.rate <= 0 || !params_.stages.empty() || !IsValidRate(rate) || !started_.load() ||
      Done()) {
    return false;
  }
  if (params_.max_rate > 0) rate = std::min(rate, params_.max_rate);
  std::lock_guard<std::mutex> lock(schedule_mu_);
  // Far enough ahead that no worker has started, or slept past, a connection due after it.
  int64_t from_nanos = clock_.NowNanos() - start_nanos_.load() + kRateChangeLeadNanos;
  uint64_t from_index = schedule_.DueBy(from_nanos);
  schedule_.ChangeRate(from_index, from_nanos, rate);
  for (auto& worker : workers_) worker->PostRateChange(from_index, from_nanos, rate);
  return true;
}

bool Engine::UpdateDestinations(const DestinationUpdate& update) {
  std::lock_guard<std::mutex> lock(destinations_mu_);
  if (!UpdateFits(update, destinations_, params_.targets.front().family())) return false;
  destinations_ += update.added.size();
  for (auto& worker : workers_) worker->PostDestinations(update);
  return true;
}

bool Engine::Done() const { return started_.load() && running_.load() == 0; }

EngineSnapshot Engine::Wait() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  return Snapshot();
}

}  // namespace churnlab
