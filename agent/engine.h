// The churn engine: opens, uses and closes TCP connections at a controlled rate (open model) or
// concurrency (closed model) from chosen source IPs, counting every outcome per source IP.
//
//   ASSIGN_OR_RETURN(auto engine, Engine::Create(params));
//   engine->Start();
//   ... engine->Snapshot() every second, Since() the previous one ...
//   EngineSnapshot final = engine->Wait();
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/engine_snapshot.h"
#include "agent/pacer.h"
#include "agent/shard_engine.h"
#include "common/clock.h"
#include "common/engine_params.h"
#include "common/os_sys_calls.h"

namespace churnlab {

class EngineWorker;

class Engine final : public ShardEngine {
 public:
  // INVALID_ARGUMENT for bad params (ValidateEngineParams); FAILED_PRECONDITION when a source IP
  // is not an address of this host; an errno status when epoll cannot be set up. `sys` and
  // `clock` must outlive the engine.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(EngineParams params,
                                                        OsSysCalls& sys = RealSysCalls(),
                                                        Clock& clock = SystemClock());
  ~Engine() override;  // stops the run and joins its threads

  // Starts the run now, one thread per worker. Call once.
  void Start() override;
  // Counters so far, without stopping the run. Safe from any thread.
  EngineSnapshot Snapshot() const;
  EngineSnapshot Snapshot() override { return std::as_const(*this).Snapshot(); }
  // Ends the run early: no new connections; in-flight ones end as Phase::kStopped.
  void Stop() override;
  // Open model: the run's total rate becomes `rate` (> 0) from kRateChangeLead from now on (the
  // coordinator handing out a lost agent's share). Every worker switches at the same connection
  // index, so the schedule stays one schedule. No effect on the closed model, or before Start().
  // Safe from any thread.
  bool ChangeRate(double rate) override;
  static constexpr int64_t kRateChangeLeadNanos = 200'000'000;
  void ExtendLease(int64_t until_nanos) override;
  bool UpdateDestinations(const DestinationUpdate& update) override;
  // True once Start() was called and every worker has finished.
  bool Done() const;
  bool Done() override { return std::as_const(*this).Done(); }
  // Blocks until the run ends; returns the final snapshot, in which attempted equals succeeded
  // plus failed for every source.
  EngineSnapshot Wait() override;

  const EngineParams& params() const override { return params_; }

 private:
  Engine(EngineParams params, Clock& clock);

  EngineParams params_;
  Clock& clock_;
  std::vector<std::unique_ptr<EngineWorker>> workers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> running_{0};
  std::atomic<int64_t> start_nanos_{0};
  std::atomic<int64_t> end_nanos_{0};
  std::atomic<int64_t> lease_until_nanos_;  // INT64_MAX unless params_.leased
  std::mutex destinations_mu_;
  size_t destinations_;  // the workers' table size; guarded by destinations_mu_
  std::mutex schedule_mu_;
  Pacer schedule_;  // the workers' common schedule, with every rate change so far
};

}  // namespace churnlab
