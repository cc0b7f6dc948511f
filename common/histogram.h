// Log-linear ("HDR-style") latency histograms: 32 linear sub-buckets per power of two, so any
// recorded value is known to within 1/32 (~3%). Histograms merge by adding buckets, which is how
// threads and agents combine percentiles honestly (never by averaging percentiles).
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/single_writer_counter.h"

namespace churnlab {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 5;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  // Values up to 2^40 ns (~18 min) get their own bucket; larger ones share the last.
  static constexpr int kMaxValueBits = 40;
  static constexpr int kBuckets = (kMaxValueBits - kSubBucketBits + 1) * kSubBuckets;

  static int BucketIndex(int64_t value);
  // The largest value that falls in bucket `index`.
  static int64_t BucketUpperBound(int index);

  void Record(int64_t value) { RecordCount(value, 1); }
  void RecordCount(int64_t value, uint64_t count);
  void Merge(const Histogram& other);
  // Leaves what was recorded after `earlier` (a snapshot of the same histogram). min and max
  // become bucket bounds, since exact extremes of an interval are not recoverable.
  void Subtract(const Histogram& earlier);

  uint64_t count() const { return count_; }
  int64_t min() const { return count_ ? min_ : 0; }
  int64_t max() const { return count_ ? max_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }
  // The value below which `percent` (0..100) of the recorded values fall, as the upper bound of
  // its bucket (never above max()); 0 for an empty histogram.
  int64_t Percentile(double percent) const;
  uint64_t bucket_count(int index) const { return counts_[index]; }
  int64_t sum() const { return sum_; }

  // Rebuilds a histogram from its parts (as carried in telemetry): non-zero buckets as
  // (index, count) pairs, and the exact sum, min and max. Out-of-range indexes are dropped.
  static Histogram FromParts(const std::vector<std::pair<int, uint64_t>>& buckets, int64_t sum,
                             int64_t min, int64_t max);

 private:
  friend class LiveHistogram;
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  int64_t sum_ = 0;
  int64_t min_ = INT64_MAX;
  int64_t max_ = 0;
};

// The engine's per-thread histogram: one writer thread records, any thread may Snapshot().
class LiveHistogram {
 public:
  void Record(int64_t value);
  Histogram Snapshot() const;

 private:
  std::array<SingleWriterCounter, Histogram::kBuckets> counts_;
  SingleWriterCounter sum_;
  SingleWriterCounter min_plus_one_;  // 0 means "no value yet"
  SingleWriterCounter max_;
};

}  // namespace churnlab
