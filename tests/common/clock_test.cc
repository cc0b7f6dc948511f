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

// The thread's CPU clock counts work, not waiting.
TEST(CensusGapTest, ThreadCpuTimeCountsWorkNotSleep) {
  const int64_t before = ThreadCpuNanos();
  const int64_t wall = SystemClock().NowNanos();
  while (SystemClock().NowNanos() - wall < 20'000'000) {
  }  // 20 ms of work
  const int64_t worked = ThreadCpuNanos() - before;
  EXPECT_GE(worked, 10'000'000);
  timespec pause{0, 50'000'000};
  nanosleep(&pause, nullptr);
  EXPECT_LT(ThreadCpuNanos() - before - worked, 10'000'000);
}

}  // namespace
}  // namespace churnlab
