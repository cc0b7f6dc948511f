#include "common/clock.h"

#include <time.h>

#include <algorithm>

namespace churnlab {

int64_t RealClock::NowNanos() {
  timespec ts;
  // CLOCK_BOOTTIME is CLOCK_MONOTONIC that also counts time suspended: a host that slept
  // through a run's end or a lease resumes past them, not before.
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

int64_t ThreadCpuNanos() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t CensusGapNanos(int64_t cost_nanos, int64_t factor, int64_t min_nanos) {
  return std::clamp(cost_nanos * factor, min_nanos, kMaxCensusGapNanos);
}

}  // namespace churnlab
