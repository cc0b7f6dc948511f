#include "target/shared_counters.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <array>

#include "absl/strings/str_cat.h"

namespace churnlab {
namespace {

// TargetCounters as an array and back, in one order.
std::array<uint64_t, 11> Fields(const TargetCounters& c) {
  return {c.accepted, c.answered,    c.closed_by_peer, c.closed_by_server,
          c.reset,    c.errors,      c.leaked,         c.leak_cap_closes,
          c.tls_full, c.tls_resumed, c.tls_failed};
}

TargetCounters FromFields(const std::array<uint64_t, 11>& f) {
  TargetCounters c;
  c.accepted = f[0];
  c.answered = f[1];
  c.closed_by_peer = f[2];
  c.closed_by_server = f[3];
  c.reset = f[4];
  c.errors = f[5];
  c.leaked = f[6];
  c.leak_cap_closes = f[7];
  c.tls_full = f[8];
  c.tls_resumed = f[9];
  c.tls_failed = f[10];
  return c;
}

static_assert(sizeof(TargetCounters) == 11 * sizeof(uint64_t),
              "a field was added to TargetCounters: add it to Fields and FromFields");

}  // namespace

absl::StatusOr<std::unique_ptr<SharedCounters>> SharedCounters::Create(size_t processes) {
  const size_t count = std::max<size_t>(1, processes);
  void* map = mmap(nullptr, count * sizeof(Slot), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map the server processes' counters: ", strerror(errno)));
  }
  Slot* slots = static_cast<Slot*>(map);
  for (size_t i = 0; i < count; ++i) {
    for (std::atomic<uint64_t>& f : slots[i].field) f.store(0, std::memory_order_relaxed);
  }
  return std::unique_ptr<SharedCounters>(new SharedCounters(slots, count));
}

SharedCounters::~SharedCounters() { munmap(slots_, count_ * sizeof(Slot)); }

void SharedCounters::Publish(size_t index, const TargetCounters& counters) {
  if (index >= count_) return;
  const std::array<uint64_t, kFields> f = Fields(counters);
  for (size_t i = 0; i < kFields; ++i) {
    slots_[index].field[i].store(f[i], std::memory_order_relaxed);
  }
}

TargetCounters SharedCounters::Sum(const TargetCounters& own) const {
  std::array<uint64_t, kFields> total = Fields(own);
  for (size_t s = 1; s < count_; ++s) {
    for (size_t i = 0; i < kFields; ++i) {
      total[i] += slots_[s].field[i].load(std::memory_order_relaxed);
    }
  }
  return FromFields(total);
}

}  // namespace churnlab
