// Pass/fail conditions on a run's merged result: "error_rate < 0.01", "connect_p99 < 50ms".
// The expression is parsed once, here, into a typed Threshold; nothing later looks at its text
// but to show it.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "churnlab/v1/report.pb.h"

namespace churnlab {

struct Threshold {
  enum class Metric {
    kErrorRate,     // failed / attempted, 0..1
    kAchievedRate,  // connections per second
    kMissedStarts,
    // Latencies, in milliseconds.
    kConnectP50,
    kConnectP90,
    kConnectP99,
    kConnectMax,
    kTotalP50,
    kTotalP90,
    kTotalP99,
    kTotalMax,
    kTlsHandshakeP50,
    kTlsHandshakeP90,
    kTlsHandshakeP99,
    kTlsHandshakeMax,
    kResumedRatio,  // TLS handshakes that resumed a session / all completed, 0..1
  };
  enum class Op { kLess, kLessEqual, kGreater, kGreaterEqual };
  std::string expression;
  Metric metric = Metric::kErrorRate;
  Op op = Op::kLess;
  // Latency limits accept units ("50ms", "1s"); a bare number is milliseconds.
  double value = 0;
};

// INVALID_ARGUMENT naming the expression and what is wrong with it.
absl::StatusOr<Threshold> ParseThreshold(absl::string_view expression);
// The name a metric has in an expression ("connect_p99").
absl::string_view MetricName(Threshold::Metric metric);
// The metric's value in `report` (totals and latency must be filled in).
double ObservedMetric(const Threshold& threshold, const v1::RunReport& report);
bool ThresholdPasses(const Threshold& threshold, double observed);
// A value of `metric` for people, with its unit and no exponent: "0.254 ms", "1500 ms", "0.9%",
// "1980/s", "12"; `extra_digits` more decimals where two values would otherwise read the same.
std::string FormatMetricValue(Threshold::Metric metric, double value, int extra_digits = 0);
// The operator as written: "<", "<=", ">", ">=".
absl::string_view OpText(Threshold::Op op);

}  // namespace churnlab
