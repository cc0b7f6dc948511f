// The counters of a target's server processes (--processes, --connections) in one mapping
// shared across fork(): each process publishes its own into a slot, and the process that
// reports (its observer, its stats and last line) sums them, so a target of several processes
// counts every connection, not only its first process's.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "target/target_worker.h"

namespace churnlab {

class SharedCounters {
 public:
  // Room for `processes` slots, made before the fork (MAP_SHARED | MAP_ANONYMOUS).
  static absl::StatusOr<std::unique_ptr<SharedCounters>> Create(size_t processes);
  ~SharedCounters();
  SharedCounters(const SharedCounters&) = delete;
  SharedCounters& operator=(const SharedCounters&) = delete;

  // Process `index` (1.. for the forked ones; 0 is the reporting process, which counts its own
  // directly) publishes its counters as they are now.
  void Publish(size_t index, const TargetCounters& counters);
  // `own` plus what every other process last published.
  TargetCounters Sum(const TargetCounters& own) const;

 private:
  static constexpr size_t kFields = 11;  // TargetCounters' fields
  struct Slot {
    std::atomic<uint64_t> field[kFields];
  };
  SharedCounters(Slot* slots, size_t count) : slots_(slots), count_(count) {}

  Slot* slots_;
  size_t count_;
};

}  // namespace churnlab
