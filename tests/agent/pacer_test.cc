#include "agent/pacer.h"

#include "gtest/gtest.h"

namespace churnlab {
namespace {

TEST(PacerTest, ConstantRateSpacesStartsEvenly) {
  Pacer pacer(1000, 0);
  EXPECT_EQ(pacer.IntendedStartNanos(0), 0);
  EXPECT_EQ(pacer.IntendedStartNanos(1), 1'000'000);
  EXPECT_EQ(pacer.IntendedStartNanos(1000), 1'000'000'000);
}

TEST(PacerTest, DueByIsTheInverseOfIntendedStart) {
  for (double rate : {1.0, 3.0, 470.0, 1000.0, 55555.0}) {
    for (int64_t ramp : {int64_t{0}, int64_t{2'000'000'000}}) {
      Pacer pacer(rate, ramp);
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
  Pacer pacer(100, 10'000'000'000);
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
  Pacer pacer(100, 0);  // one start every 10 ms
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
  Pacer pacer(777, 3'000'000'000);
  int64_t previous = -1;
  for (uint64_t i = 0; i < 5000; ++i) {
    int64_t t = pacer.IntendedStartNanos(i);
    ASSERT_GE(t, previous) << i;
    previous = t;
  }
}

}  // namespace
}  // namespace churnlab
