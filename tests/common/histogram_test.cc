#include "common/histogram.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace churnlab {
namespace {

TEST(HistogramTest, BucketsCoverValuesWithinThreePercent) {
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{31}, int64_t{32}, int64_t{33}, int64_t{1000},
                    int64_t{123'456}, int64_t{987'654'321}, int64_t{1} << 39}) {
    int index = Histogram::BucketIndex(v);
    int64_t upper = Histogram::BucketUpperBound(index);
    int64_t lower = index == 0 ? 0 : Histogram::BucketUpperBound(index - 1) + 1;
    EXPECT_LE(lower, v);
    EXPECT_GE(upper, v);
    EXPECT_LE(upper - lower, std::max<int64_t>(0, v / 32)) << v;
  }
}

TEST(HistogramTest, PercentilesOfAUniformSpread) {
  Histogram h;
  for (int64_t v = 1; v <= 100'000; ++v) h.Record(v * 1000);  // 1us .. 100ms
  EXPECT_EQ(h.count(), 100'000u);
  EXPECT_EQ(h.min(), 1000);
  EXPECT_EQ(h.max(), 100'000'000);
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    double exact = p / 100 * 100'000'000;
    EXPECT_NEAR(static_cast<double>(h.Percentile(p)), exact, exact * 0.032) << "p" << p;
  }
  EXPECT_EQ(h.Percentile(100), h.max());
  EXPECT_NEAR(h.mean(), 50'000'500, 1);
}

TEST(HistogramTest, MergingEqualsRecordingEverythingInOne) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> latency(12, 1.5);
  Histogram a, b, all;
  for (int i = 0; i < 50'000; ++i) {
    int64_t v = static_cast<int64_t>(latency(rng));
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  Histogram merged = a;
  merged.Merge(b);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  for (double p : {1.0, 50.0, 99.0, 99.99}) EXPECT_EQ(merged.Percentile(p), all.Percentile(p));
}

TEST(HistogramTest, SubtractLeavesTheLaterInterval) {
  Histogram before;
  for (int i = 0; i < 100; ++i) before.Record(1'000);
  Histogram after = before;
  for (int i = 0; i < 10; ++i) after.Record(5'000'000);
  after.Subtract(before);
  EXPECT_EQ(after.count(), 10u);
  EXPECT_NEAR(static_cast<double>(after.Percentile(50)), 5e6, 5e6 * 0.032);
  EXPECT_GE(after.min(), 4'800'000);
}

TEST(HistogramTest, LiveSnapshotMatchesPlainRecording) {
  LiveHistogram live;
  Histogram plain;
  for (int64_t v : {5, 50, 500, 5000, 50'000, 5}) {
    live.Record(v);
    plain.Record(v);
  }
  Histogram snap = live.Snapshot();
  EXPECT_EQ(snap.count(), plain.count());
  EXPECT_EQ(snap.min(), 5);
  EXPECT_EQ(snap.max(), 50'000);
  EXPECT_EQ(snap.Percentile(50), plain.Percentile(50));
  EXPECT_EQ(snap.mean(), plain.mean());
}

TEST(HistogramTest, EmptyHistogramReportsZeros) {
  Histogram h;
  EXPECT_EQ(h.Percentile(99), 0);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
}

}  // namespace
}  // namespace churnlab
