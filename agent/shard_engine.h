// What an agent runs a shard on: the engine in this process (agent/engine.h), or the same
// engine in several processes when one process's fd limit cannot hold the shard
// (agent/engine_processes.h).
#pragma once

#include <memory>

#include "agent/engine_snapshot.h"
#include "common/engine_params.h"

namespace churnlab {

class ShardEngine {
 public:
  virtual ~ShardEngine() = default;
  // Starts the run now. Call once.
  virtual void Start() = 0;
  // Counters so far (merged over processes), without stopping the run.
  virtual EngineSnapshot Snapshot() = 0;
  // Ends the run early: no new connections; held ones close by the policy, others end stopped.
  virtual void Stop() = 0;
  // Open model: the total rate becomes `rate` shortly from now (see Engine::ChangeRate); false
  // when the engine does not take it (closed model, stages, not running, split over processes).
  virtual bool ChangeRate(double rate) = 0;
  // Leased params (EngineParams::leased): connections start only before `until_nanos` on the
  // monotonic clock (SystemClock: CLOCK_BOOTTIME, the same in every process); a lease only grows.
  // Starts due while it has lapsed are counted late, never made late. Safe from any thread, and
  // never blocks on an engine process.
  virtual void ExtendLease(int64_t until_nanos) = 0;
  // From shortly after now, new connections go to the update's destinations (a name looked up
  // again). False, and nothing changes, when the update does not fit the engine's table (its
  // `first` is not the table's size, an index is past it, the table would pass
  // kMaxDestinations, an address is of another family). Safe from any thread; never blocks on an
  // engine process.
  virtual bool UpdateDestinations(const DestinationUpdate& update) = 0;
  // True once started and every worker has finished.
  virtual bool Done() = 0;
  // Blocks until the run ends; the final snapshot.
  virtual EngineSnapshot Wait() = 0;
  virtual const EngineParams& params() const = 0;
};
using ShardEnginePtr = std::unique_ptr<ShardEngine>;

}  // namespace churnlab
