#include "common/clock.h"

#include <time.h>

#include "gtest/gtest.h"

namespace churnlab {
namespace {

// A census is paced by the CPU it cost: factor times that, never below the floor, never more
// than 30 s apart.
TEST(CensusGapTest, FactorTimesTheCostWithinItsBounds) {
  EXPECT_EQ(CensusGapNanos(1'000'000, 50, 2'000'000'000), 2'000'000'000);    // cheap: the floor
  EXPECT_EQ(CensusGapNanos(100'000'000, 50, 2'000'000'000), 5'000'000'000);  // 50 x 0.1 s
  EXPECT_EQ(CensusGapNanos(2'000'000'000, 50, 2'000'000'000), kMaxCensusGapNanos);
}

// The thread's CPU clock counts work, not waiting. Work until it reads 20 ms (however long a busy
// machine makes that take, 10 s at most): a clock that did not count work never gets there; one
// that counted the wall clock would count the sleep after it.
TEST(CensusGapTest, ThreadCpuTimeCountsWorkNotSleep) {
  const int64_t before = ThreadCpuNanos();
  const int64_t wall = SystemClock().NowNanos();
  int64_t worked = 0;
  while (worked < 20'000'000 && SystemClock().NowNanos() - wall < 10'000'000'000) {
    worked = ThreadCpuNanos() - before;
  }
  EXPECT_GE(worked, 20'000'000);
  timespec pause{0, 50'000'000};
  nanosleep(&pause, nullptr);
  EXPECT_LT(ThreadCpuNanos() - before - worked, 10'000'000);
}

}  // namespace
}  // namespace churnlab
