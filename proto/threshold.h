// Pass/fail conditions on a run's merged result: "error_rate < 0.01", "connect_p99 < 50ms".
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "churnlab/v1/report.pb.h"

namespace churnlab {

struct Threshold {
  enum class Op { kLess, kLessEqual, kGreater, kGreaterEqual };
  std::string expression;
  // error_rate (failed/attempted, 0..1), achieved_rate (conn/s), missed_starts,
  // connect_p50|p90|p99|max and total_p50|p90|p99|max (milliseconds).
  std::string metric;
  Op op = Op::kLess;
  // Latency limits accept units ("50ms", "1s"); a bare number is milliseconds.
  double value = 0;
};

// INVALID_ARGUMENT naming the expression and what is wrong with it.
absl::StatusOr<Threshold> ParseThreshold(absl::string_view expression);
// The metric's value in `report` (totals and latency must be filled in).
double ObservedMetric(const Threshold& threshold, const v1::RunReport& report);
bool ThresholdPasses(const Threshold& threshold, double observed);

}  // namespace churnlab
