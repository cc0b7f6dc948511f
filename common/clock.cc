#include "common/clock.h"

#include <time.h>

namespace churnlab {

int64_t RealClock::NowNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

}  // namespace churnlab
