#include "proto/threshold.h"

#include <cmath>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/flags.h"

namespace churnlab {
namespace {

using Metric = Threshold::Metric;
using Op = Threshold::Op;

// One row per metric: its name in expressions, whether its limit may carry a unit, and where the
// report keeps its value.
struct MetricSpelling {
  absl::string_view name;
  Metric metric;
  bool latency;
  double (*read)(const v1::RunReport&);
};

double ErrorRate(const v1::RunReport& r) {
  uint64_t attempted = r.totals().attempted();
  return attempted == 0 ? 0 : static_cast<double>(r.totals().failed()) / attempted;
}
const v1::LatencySummary& Connect(const v1::RunReport& r) { return r.latency().connect(); }
const v1::LatencySummary& Total(const v1::RunReport& r) { return r.latency().total(); }
const v1::LatencySummary& Tls(const v1::RunReport& r) { return r.latency().tls_handshake(); }

constexpr MetricSpelling kMetrics[] = {
    {"error_rate", Metric::kErrorRate, false, ErrorRate},
    {"achieved_rate", Metric::kAchievedRate, false,
     [](const v1::RunReport& r) { return r.achieved_rate(); }},
    {"missed_starts", Metric::kMissedStarts, false,
     [](const v1::RunReport& r) { return static_cast<double>(r.totals().missed_starts()); }},
    {"connect_p50", Metric::kConnectP50, true,
     [](const v1::RunReport& r) { return Connect(r).p50_ms(); }},
    {"connect_p90", Metric::kConnectP90, true,
     [](const v1::RunReport& r) { return Connect(r).p90_ms(); }},
    {"connect_p99", Metric::kConnectP99, true,
     [](const v1::RunReport& r) { return Connect(r).p99_ms(); }},
    {"connect_max", Metric::kConnectMax, true,
     [](const v1::RunReport& r) { return Connect(r).max_ms(); }},
    {"total_p50", Metric::kTotalP50, true,
     [](const v1::RunReport& r) { return Total(r).p50_ms(); }},
    {"total_p90", Metric::kTotalP90, true,
     [](const v1::RunReport& r) { return Total(r).p90_ms(); }},
    {"total_p99", Metric::kTotalP99, true,
     [](const v1::RunReport& r) { return Total(r).p99_ms(); }},
    {"total_max", Metric::kTotalMax, true,
     [](const v1::RunReport& r) { return Total(r).max_ms(); }},
    {"tls_handshake_p50", Metric::kTlsHandshakeP50, true,
     [](const v1::RunReport& r) { return Tls(r).p50_ms(); }},
    {"tls_handshake_p90", Metric::kTlsHandshakeP90, true,
     [](const v1::RunReport& r) { return Tls(r).p90_ms(); }},
    {"tls_handshake_p99", Metric::kTlsHandshakeP99, true,
     [](const v1::RunReport& r) { return Tls(r).p99_ms(); }},
    {"tls_handshake_max", Metric::kTlsHandshakeMax, true,
     [](const v1::RunReport& r) { return Tls(r).max_ms(); }},
    {"resumed_ratio", Metric::kResumedRatio, false,
     [](const v1::RunReport& r) { return r.totals().resumed_ratio(); }},
};

constexpr std::pair<absl::string_view, Op> kOps[] = {
    {"<", Op::kLess}, {"<=", Op::kLessEqual}, {">", Op::kGreater}, {">=", Op::kGreaterEqual}};

const MetricSpelling* FindMetric(absl::string_view name) {
  for (const MetricSpelling& m : kMetrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

const MetricSpelling& RowOf(Metric metric) {
  for (const MetricSpelling& m : kMetrics) {
    if (m.metric == metric) return m;
  }
  return kMetrics[0];  // every Metric has a row
}

}  // namespace

absl::string_view MetricName(Metric metric) { return RowOf(metric).name; }

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
  if (ParseFiniteDouble(parts[2], &t.value)) return t;
  absl::Duration d;
  if (!metric->latency) return bad("the limit is not a number");
  // ParseDuration takes "inf" too: a limit no latency can pass or fail is no limit.
  if (!absl::ParseDuration(parts[2], &d) || d == absl::InfiniteDuration() ||
      d == -absl::InfiniteDuration()) {
    return bad("the limit is not a duration like 50ms");
  }
  t.value = absl::ToDoubleMilliseconds(d);
  return t;
}

double ObservedMetric(const Threshold& t, const v1::RunReport& report) {
  return RowOf(t.metric).read(report);
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

namespace {

// Fixed notation, never exponents: three significant digits for small values, whole numbers from
// 100 up, `extra` more decimals on request; trailing zeros dropped ("25.4", "1500", "0.254").
std::string Fixed(double value, int extra) {
  const double size = std::fabs(value);
  const int decimals = (size >= 100 ? 0 : size >= 10 ? 1 : size >= 1 ? 2 : 3) + extra;
  std::string out = absl::StrFormat("%.*f", decimals, value);
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  return out == "-0" ? "0" : out;
}

}  // namespace

std::string FormatMetricValue(Metric metric, double value, int extra_digits) {
  if (!std::isfinite(value)) return absl::StrCat(value);
  switch (metric) {
    case Metric::kErrorRate:
    case Metric::kResumedRatio:
      return absl::StrCat(Fixed(value * 100, extra_digits), "%");
    case Metric::kAchievedRate:
      return absl::StrCat(Fixed(value, extra_digits), "/s");
    case Metric::kMissedStarts:
      return Fixed(value, extra_digits);
    default:  // latencies, in milliseconds
      return absl::StrCat(Fixed(value, extra_digits), " ms");
  }
}

absl::string_view OpText(Op op) {
  for (const auto& o : kOps) {
    if (o.second == op) return o.first;
  }
  return "?";
}

}  // namespace churnlab
