#include "proto/threshold.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace churnlab {
namespace {

using Metric = Threshold::Metric;
using Op = Threshold::Op;

struct MetricSpelling {
  absl::string_view name;
  Metric metric;
  bool latency;  // the limit may carry a unit
};

constexpr MetricSpelling kMetrics[] = {
    {"error_rate", Metric::kErrorRate, false},
    {"achieved_rate", Metric::kAchievedRate, false},
    {"missed_starts", Metric::kMissedStarts, false},
    {"connect_p50", Metric::kConnectP50, true},
    {"connect_p90", Metric::kConnectP90, true},
    {"connect_p99", Metric::kConnectP99, true},
    {"connect_max", Metric::kConnectMax, true},
    {"total_p50", Metric::kTotalP50, true},
    {"total_p90", Metric::kTotalP90, true},
    {"total_p99", Metric::kTotalP99, true},
    {"total_max", Metric::kTotalMax, true},
};

constexpr std::pair<absl::string_view, Op> kOps[] = {
    {"<", Op::kLess}, {"<=", Op::kLessEqual}, {">", Op::kGreater}, {">=", Op::kGreaterEqual}};

const MetricSpelling* FindMetric(absl::string_view name) {
  for (const MetricSpelling& m : kMetrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

}  // namespace

absl::string_view MetricName(Metric metric) {
  for (const MetricSpelling& m : kMetrics) {
    if (m.metric == metric) return m.name;
  }
  return "?";
}

absl::StatusOr<Threshold> ParseThreshold(absl::string_view expression) {
  Threshold t;
  t.expression = std::string(absl::StripAsciiWhitespace(expression));
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("thresholds: '", t.expression, "': ", why));
  };
  std::vector<absl::string_view> parts =
      absl::StrSplit(t.expression, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (parts.size() != 3) return bad("expected METRIC OP VALUE, like error_rate < 0.01");
  const MetricSpelling* metric = FindMetric(parts[0]);
  if (metric == nullptr) {
    return bad(absl::StrCat("unknown metric '", parts[0], "' (use ",
                            absl::StrJoin(kMetrics, ", ",
                                          [](std::string* out, const MetricSpelling& m) {
                                            absl::StrAppend(out, m.name);
                                          }),
                            ")"));
  }
  t.metric = metric->metric;
  const std::pair<absl::string_view, Op>* op = nullptr;
  for (const auto& o : kOps) {
    if (o.first == parts[1]) op = &o;
  }
  if (op == nullptr)
    return bad(absl::StrCat("unknown operator '", parts[1], "' (use <, <=, >, >=)"));
  t.op = op->second;
  if (absl::SimpleAtod(parts[2], &t.value)) return t;
  absl::Duration d;
  if (!metric->latency) return bad("the limit is not a number");
  if (!absl::ParseDuration(parts[2], &d)) return bad("the limit is not a duration like 50ms");
  t.value = absl::ToDoubleMilliseconds(d);
  return t;
}

double ObservedMetric(const Threshold& t, const v1::RunReport& report) {
  const v1::LatencySummary& connect = report.latency().connect();
  const v1::LatencySummary& total = report.latency().total();
  switch (t.metric) {
    case Metric::kErrorRate: {
      uint64_t attempted = report.totals().attempted();
      return attempted == 0 ? 0 : static_cast<double>(report.totals().failed()) / attempted;
    }
    case Metric::kAchievedRate:
      return report.achieved_rate();
    case Metric::kMissedStarts:
      return static_cast<double>(report.totals().missed_starts());
    case Metric::kConnectP50:
      return connect.p50_ms();
    case Metric::kConnectP90:
      return connect.p90_ms();
    case Metric::kConnectP99:
      return connect.p99_ms();
    case Metric::kConnectMax:
      return connect.max_ms();
    case Metric::kTotalP50:
      return total.p50_ms();
    case Metric::kTotalP90:
      return total.p90_ms();
    case Metric::kTotalP99:
      return total.p99_ms();
    case Metric::kTotalMax:
      return total.max_ms();
  }
  return 0;
}

bool ThresholdPasses(const Threshold& t, double observed) {
  switch (t.op) {
    case Op::kLess:
      return observed < t.value;
    case Op::kLessEqual:
      return observed <= t.value;
    case Op::kGreater:
      return observed > t.value;
    case Op::kGreaterEqual:
      return observed >= t.value;
  }
  return false;
}

}  // namespace churnlab
