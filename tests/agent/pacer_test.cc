#include "agent/pacer.h"

#include "gtest/gtest.h"

namespace churnlab {
namespace {

// The schedule of a rate after a linear ramp from 0 (none for ramp_nanos = 0).
Pacer Ramp(double rate, int64_t ramp_nanos) {
  return ramp_nanos > 0 ? Pacer(0, {{ramp_nanos, rate}}) : Pacer(rate, {});
}

TEST(PacerTest, ConstantRateSpacesStartsEvenly) {
  Pacer pacer = Ramp(1000, 0);
  EXPECT_EQ(pacer.IntendedStartNanos(0), 0);
  EXPECT_EQ(pacer.IntendedStartNanos(1), 1'000'000);
  EXPECT_EQ(pacer.IntendedStartNanos(1000), 1'000'000'000);
}

TEST(PacerTest, DueByIsTheInverseOfIntendedStart) {
  for (double rate : {1.0, 3.0, 470.0, 1000.0, 55555.0}) {
    for (int64_t ramp : {int64_t{0}, int64_t{2'000'000'000}}) {
      Pacer pacer = Ramp(rate, ramp);
      for (uint64_t i = 0; i < 2000; i += 7) {
        int64_t t = pacer.IntendedStartNanos(i);
        EXPECT_EQ(pacer.DueBy(t), i + 1) << "rate " << rate << " ramp " << ramp << " i " << i;
        if (t > 0) {
          EXPECT_LE(pacer.DueBy(t - 1), i) << "rate " << rate << " i " << i;
        }
      }
    }
  }
}

TEST(PacerTest, RampStartsHalfTheConnectionsOfAFullRate) {
  // Over a 10 s linear ramp to 100/s the average rate is 50/s: 500 connections.
  Pacer pacer = Ramp(100, 10'000'000'000);
  EXPECT_EQ(pacer.DueBy(10'000'000'000 - 1), 500u);
  // After the ramp the full rate applies: one more every 10 ms.
  EXPECT_EQ(pacer.IntendedStartNanos(501) - pacer.IntendedStartNanos(500), 10'000'000);
  // Early in the ramp starts are sparse, late they are dense.
  EXPECT_GT(pacer.IntendedStartNanos(1) - pacer.IntendedStartNanos(0),
            pacer.IntendedStartNanos(400) - pacer.IntendedStartNanos(399));
}

// A rate change (the coordinator's rebalance) continues the schedule at the new rate from the
// index due at the change, without a jump back or a burst.
TEST(PacerTest, ARateChangeContinuesTheScheduleAtTheNewRate) {
  Pacer pacer = Ramp(100, 0);  // one start every 10 ms
  const int64_t at = 1'005'000'000;
  uint64_t from = pacer.DueBy(at);
  EXPECT_EQ(from, 101u);  // starts 0..100 are due by 1.005 s
  pacer.ChangeRate(from, at, 200);
  EXPECT_EQ(pacer.IntendedStartNanos(100), 1'000'000'000);  // before the change: unchanged
  EXPECT_EQ(pacer.IntendedStartNanos(from), at);
  EXPECT_EQ(pacer.IntendedStartNanos(from + 200), at + 1'000'000'000);  // 200 in the next second
  EXPECT_EQ(pacer.DueBy(at + 1'000'000'000), from + 201);
  for (uint64_t i = 1; i < 1000; ++i) {
    ASSERT_LE(pacer.IntendedStartNanos(i - 1), pacer.IntendedStartNanos(i)) << i;
  }
}

TEST(PacerTest, StartTimesNeverGoBackwards) {
  Pacer pacer = Ramp(777, 3'000'000'000);
  int64_t previous = -1;
  for (uint64_t i = 0; i < 5000; ++i) {
    int64_t t = pacer.IntendedStartNanos(i);
    ASSERT_GE(t, previous) << i;
    previous = t;
  }
}

// k6's ramping arrival rate: up from 0 to 100/s over 10 s, 100/s for 10 s, down to 0 over 10 s:
// 500 + 1000 + 500 connections, and none after.
TEST(PacerTest, StagesAreLinearWithinEachAndStopAtAFinalZero) {
  const int64_t s = 1'000'000'000;
  Pacer pacer(0, {{10 * s, 100}, {10 * s, 100}, {10 * s, 0}});
  EXPECT_EQ(pacer.DueBy(10 * s - 1), 500u);
  EXPECT_EQ(pacer.DueBy(20 * s - 1), 1500u);
  EXPECT_EQ(pacer.DueBy(30 * s), 2000u);
  EXPECT_EQ(pacer.DueBy(3600 * s), 2000u);
  EXPECT_EQ(pacer.IntendedStartNanos(2000), INT64_MAX);
  // In the falling leg starts thin out: the gaps grow.
  int64_t gap_early = pacer.IntendedStartNanos(1600) - pacer.IntendedStartNanos(1599);
  int64_t gap_late = pacer.IntendedStartNanos(1990) - pacer.IntendedStartNanos(1989);
  EXPECT_GT(gap_late, 3 * gap_early);
  int64_t previous = 0;
  for (uint64_t i = 0; i < 2000; ++i) {
    int64_t t = pacer.IntendedStartNanos(i);
    ASSERT_GE(t, previous) << i;
    ASSERT_EQ(pacer.DueBy(t), i + 1) << i;
    previous = t;
  }
}

TEST(PacerTest, AStepBetweenStagesKeepsTheRateOfEach) {
  const int64_t s = 1'000'000'000;
  // 50/s for 2 s, a 1 ns leg up to 200/s (a step), 200/s for 2 s, then 200/s on.
  Pacer pacer(50, {{2 * s, 50}, {1, 200}, {2 * s, 200}});
  EXPECT_EQ(pacer.DueBy(2 * s - 1), 100u);
  EXPECT_NEAR(static_cast<double>(pacer.DueBy(4 * s)), 500, 1);
  EXPECT_NEAR(static_cast<double>(pacer.DueBy(5 * s)), 700, 1);
}

}  // namespace
}  // namespace churnlab
