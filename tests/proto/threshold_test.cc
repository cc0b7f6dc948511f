#include "proto/threshold.h"

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace churnlab {
namespace {

TEST(ThresholdTest, ParsesAndEvaluates) {
  v1::RunReport report;
  report.mutable_totals()->set_attempted(1000);
  report.mutable_totals()->set_failed(20);
  report.set_achieved_rate(480);
  report.mutable_latency()->mutable_connect()->set_p99_ms(12.5);
  absl::StatusOr<Threshold> errors = ParseThreshold("error_rate < 0.01");
  ASSERT_TRUE(errors.ok());
  EXPECT_DOUBLE_EQ(ObservedMetric(*errors, report), 0.02);
  EXPECT_FALSE(ThresholdPasses(*errors, 0.02));
  absl::StatusOr<Threshold> p99 = ParseThreshold("connect_p99 < 50ms");
  ASSERT_TRUE(p99.ok());
  EXPECT_DOUBLE_EQ(p99->value, 50);
  EXPECT_TRUE(ThresholdPasses(*p99, ObservedMetric(*p99, report)));
  absl::StatusOr<Threshold> seconds = ParseThreshold("total_max <= 1s");
  ASSERT_TRUE(seconds.ok());
  EXPECT_DOUBLE_EQ(seconds->value, 1000);
  absl::StatusOr<Threshold> rate = ParseThreshold("achieved_rate >= 450");
  ASSERT_TRUE(rate.ok());
  EXPECT_TRUE(ThresholdPasses(*rate, ObservedMetric(*rate, report)));
  EXPECT_FALSE(ParseThreshold("connect_p99 < fast").ok());
  EXPECT_FALSE(ParseThreshold("error_rate <").ok());
  // NaN fails every comparison and infinity passes it: a limit of either checks nothing.
  for (const char* odd : {"error_rate < nan", "achieved_rate >= inf", "connect_p99 < -inf"}) {
    EXPECT_FALSE(ParseThreshold(odd).ok()) << odd;
  }
}

// Every operator at its bound: "error_rate < 0.01" with 10 failures of 1,000 fails (0.01 is not
// under 0.01), "<=" passes it; likewise ">" and ">=".
TEST(ThresholdTest, EveryOperatorAtItsExactBound) {
  v1::RunReport report;
  report.mutable_totals()->set_attempted(1000);
  report.mutable_totals()->set_failed(10);
  const std::pair<const char*, bool> want[] = {{"error_rate < 0.01", false},
                                               {"error_rate <= 0.01", true},
                                               {"error_rate > 0.01", false},
                                               {"error_rate >= 0.01", true}};
  for (const auto& [text, passes] : want) {
    absl::StatusOr<Threshold> t = ParseThreshold(text);
    ASSERT_TRUE(t.ok()) << text;
    EXPECT_EQ(ThresholdPasses(*t, ObservedMetric(*t, report)), passes) << text;
  }
}

// Each metric's name parses to the metric that reads its own figure, and back to its name.
TEST(ThresholdTest, EveryMetricReadsItsOwnFigure) {
  v1::RunReport report;
  report.mutable_totals()->set_attempted(100);
  report.mutable_totals()->set_failed(5);
  report.mutable_totals()->set_missed_starts(7);
  report.set_achieved_rate(480);
  v1::LatencySummary* connect = report.mutable_latency()->mutable_connect();
  connect->set_p50_ms(1);
  connect->set_p90_ms(2);
  connect->set_p99_ms(3);
  connect->set_max_ms(4);
  v1::LatencySummary* total = report.mutable_latency()->mutable_total();
  total->set_p50_ms(11);
  total->set_p90_ms(12);
  total->set_p99_ms(13);
  total->set_max_ms(14);
  const std::pair<const char*, double> want[] = {
      {"error_rate", 0.05}, {"achieved_rate", 480}, {"missed_starts", 7}, {"connect_p50", 1},
      {"connect_p90", 2},   {"connect_p99", 3},     {"connect_max", 4},   {"total_p50", 11},
      {"total_p90", 12},    {"total_p99", 13},      {"total_max", 14}};
  for (const auto& [name, value] : want) {
    absl::StatusOr<Threshold> t = ParseThreshold(std::string(name) + " <= 1000");
    ASSERT_TRUE(t.ok()) << name << ": " << t.status();
    EXPECT_EQ(MetricName(t->metric), name);
    EXPECT_DOUBLE_EQ(ObservedMetric(*t, report), value) << name;
  }
}

TEST(ThresholdTest, ABadExpressionIsRefusedNamingWhatIsWrong) {
  absl::Status metric = ParseThreshold("conect_p99 < 50ms").status();
  EXPECT_TRUE(absl::StrContains(metric.message(), "unknown metric 'conect_p99'")) << metric;
  EXPECT_TRUE(absl::StrContains(metric.message(), "(use error_rate, achieved_rate")) << metric;
  EXPECT_TRUE(absl::StrContains(ParseThreshold("error_rate =< 0.1").status().message(),
                                "unknown operator '=<'"));
  // Units belong to latencies only.
  EXPECT_TRUE(
      absl::StrContains(ParseThreshold("error_rate < 1s").status().message(), "not a number"));
  absl::StatusOr<Threshold> second = ParseThreshold("connect_p99 > 1s");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_DOUBLE_EQ(second->value, 1000);
}

}  // namespace
}  // namespace churnlab
