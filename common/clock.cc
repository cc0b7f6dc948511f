#include "common/clock.h"

#include <time.h>

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

}  // namespace churnlab
