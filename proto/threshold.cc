#include "proto/threshold.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace churnlab {
namespace {

const std::vector<std::string>& LatencyMetrics() {
  static const auto* metrics =
      new std::vector<std::string>{"connect_p50", "connect_p90", "connect_p99", "connect_max",
                                   "total_p50",   "total_p90",   "total_p99",   "total_max"};
  return *metrics;
}

bool IsLatency(absl::string_view metric) {
  for (const std::string& m : LatencyMetrics()) {
    if (m == metric) return true;
  }
  return false;
}

double Pick(const v1::LatencySummary& s, absl::string_view which) {
  if (which == "p50") return s.p50_ms();
  if (which == "p90") return s.p90_ms();
  if (which == "p99") return s.p99_ms();
  return s.max_ms();
}

}  // namespace

absl::StatusOr<Threshold> ParseThreshold(absl::string_view expression) {
  Threshold t;
  t.expression = std::string(absl::StripAsciiWhitespace(expression));
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("thresholds: '", t.expression, "': ", why));
  };
  std::vector<absl::string_view> parts =
      absl::StrSplit(t.expression, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (parts.size() != 3) return bad("expected METRIC OP VALUE, like error_rate < 0.01");
  t.metric = std::string(parts[0]);
  if (parts[1] == "<")
    t.op = Threshold::Op::kLess;
  else if (parts[1] == "<=")
    t.op = Threshold::Op::kLessEqual;
  else if (parts[1] == ">")
    t.op = Threshold::Op::kGreater;
  else if (parts[1] == ">=")
    t.op = Threshold::Op::kGreaterEqual;
  else
    return bad(absl::StrCat("unknown operator '", parts[1], "' (use <, <=, >, >=)"));
  if (IsLatency(t.metric)) {
    absl::Duration d;
    if (absl::SimpleAtod(parts[2], &t.value)) return t;
    if (!absl::ParseDuration(parts[2], &d)) return bad("the limit is not a duration like 50ms");
    t.value = absl::ToDoubleMilliseconds(d);
    return t;
  }
  if (t.metric != "error_rate" && t.metric != "achieved_rate" && t.metric != "missed_starts") {
    return bad(
        "unknown metric (use error_rate, achieved_rate, missed_starts, connect_p50/p90/"
        "p99/max or total_p50/p90/p99/max)");
  }
  if (!absl::SimpleAtod(parts[2], &t.value)) return bad("the limit is not a number");
  return t;
}

double ObservedMetric(const Threshold& t, const v1::RunReport& report) {
  if (t.metric == "error_rate") {
    uint64_t attempted = report.totals().attempted();
    return attempted == 0 ? 0 : static_cast<double>(report.totals().failed()) / attempted;
  }
  if (t.metric == "achieved_rate") return report.achieved_rate();
  if (t.metric == "missed_starts") return static_cast<double>(report.totals().missed_starts());
  std::pair<std::string, std::string> kind = absl::StrSplit(t.metric, '_');
  return Pick(kind.first == "connect" ? report.latency().connect() : report.latency().total(),
              kind.second);
}

bool ThresholdPasses(const Threshold& t, double observed) {
  switch (t.op) {
    case Threshold::Op::kLess:
      return observed < t.value;
    case Threshold::Op::kLessEqual:
      return observed <= t.value;
    case Threshold::Op::kGreater:
      return observed > t.value;
    case Threshold::Op::kGreaterEqual:
      return observed >= t.value;
  }
  return false;
}

}  // namespace churnlab
