// Counters written by exactly one thread and read by others. The writer's load+store is a plain
// add on x86 (no lock prefix), so the hot path pays nothing, yet readers never see a torn value.
// Release stores and acquire loads let a reader that reads outcomes before `attempted` rely on
// attempted >= succeeded + failed.
#pragma once

#include <atomic>
#include <cstdint>

namespace churnlab {

class SingleWriterCounter {
 public:
  // Only the owning thread may call Add/Set.
  void Add(uint64_t n = 1) { Set(value_.load(std::memory_order_relaxed) + n); }
  void Set(uint64_t v) { value_.store(v, std::memory_order_release); }
  uint64_t Load() const { return value_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace churnlab
