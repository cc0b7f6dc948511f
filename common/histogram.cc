#include "common/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace churnlab {

int Histogram::BucketIndex(int64_t value) {
  if (value < 0) value = 0;
  uint64_t v = static_cast<uint64_t>(value);
  if (v < kSubBuckets) return static_cast<int>(v);
  int exponent = 63 - std::countl_zero(v);
  int shift = exponent - kSubBucketBits;
  int index = (shift + 1) * kSubBuckets + static_cast<int>((v >> shift) - kSubBuckets);
  return std::min(index, kBuckets - 1);
}

int64_t Histogram::BucketUpperBound(int index) {
  if (index < kSubBuckets) return index;
  int shift = index / kSubBuckets - 1;
  int64_t sub = index % kSubBuckets + kSubBuckets;
  return ((sub + 1) << shift) - 1;
}

void Histogram::RecordCount(int64_t value, uint64_t count) {
  if (count == 0) return;
  if (value < 0) value = 0;
  counts_[BucketIndex(value)] += count;
  count_ += count;
  sum_ += value * static_cast<int64_t>(count);
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::Merge(const Histogram& other) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::Subtract(const Histogram& earlier) {
  count_ = 0;
  min_ = INT64_MAX;
  max_ = 0;
  for (int i = 0; i < kBuckets; ++i) {
    counts_[i] -= earlier.counts_[i];
    if (counts_[i] == 0) continue;
    count_ += counts_[i];
    int64_t low = i == 0 ? 0 : BucketUpperBound(i - 1) + 1;
    min_ = std::min(min_, low);
    max_ = std::max(max_, BucketUpperBound(i));
  }
  sum_ -= earlier.sum_;
}

Histogram Histogram::FromParts(const std::vector<std::pair<int, uint64_t>>& buckets, int64_t sum,
                               int64_t min, int64_t max) {
  Histogram out;
  for (const auto& [index, count] : buckets) {
    if (index < 0 || index >= kBuckets) continue;
    out.counts_[index] += count;
    out.count_ += count;
  }
  out.sum_ = sum;
  if (out.count_ > 0) {
    out.min_ = min;
    out.max_ = max;
  }
  return out;
}

int64_t Histogram::Percentile(double percent) const {
  if (count_ == 0) return 0;
  percent = std::clamp(percent, 0.0, 100.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(percent / 100.0 * count_));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(BucketUpperBound(i), min_, max_);
  }
  return max_;
}

void LiveHistogram::Record(int64_t value) {
  if (value < 0) value = 0;
  counts_[Histogram::BucketIndex(value)].Add();
  sum_.Add(static_cast<uint64_t>(value));
  uint64_t min_plus_one = min_plus_one_.Load();
  if (min_plus_one == 0 || static_cast<uint64_t>(value) + 1 < min_plus_one) {
    min_plus_one_.Set(static_cast<uint64_t>(value) + 1);
  }
  if (static_cast<uint64_t>(value) > max_.Load()) max_.Set(static_cast<uint64_t>(value));
}

Histogram LiveHistogram::Snapshot() const {
  Histogram out;
  for (int i = 0; i < Histogram::kBuckets; ++i) {
    out.counts_[i] = counts_[i].Load();
    out.count_ += out.counts_[i];
  }
  out.sum_ = static_cast<int64_t>(sum_.Load());
  uint64_t min_plus_one = min_plus_one_.Load();
  out.min_ = min_plus_one == 0 ? INT64_MAX : static_cast<int64_t>(min_plus_one - 1);
  out.max_ = static_cast<int64_t>(max_.Load());
  return out;
}

}  // namespace churnlab
