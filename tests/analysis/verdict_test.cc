#include "analysis/verdict.h"

#include "gtest/gtest.h"

namespace churnlab::analysis {
namespace {

v1::RunReport Completed(uint64_t attempted, uint64_t failed) {
  v1::RunReport report;
  report.set_state(v1::RunReport::STATE_COMPLETED);
  report.mutable_totals()->set_attempted(attempted);
  report.mutable_totals()->set_succeeded(attempted - failed);
  report.mutable_totals()->set_failed(failed);
  report.add_agents()->set_name("a1");
  return report;
}

TEST(VerdictTest, WithoutThresholdsFailuresAboveOnePercentFail) {
  v1::RunReport report = Completed(1000, 200);
  JudgeRun(&report);
  EXPECT_EQ(report.verdict(), v1::RunReport::VERDICT_FAIL);
  ASSERT_EQ(report.thresholds_size(), 1);
  EXPECT_EQ(report.thresholds(0).expression(), "error_rate < 0.01");
  EXPECT_TRUE(report.thresholds(0).is_default());
  EXPECT_DOUBLE_EQ(report.thresholds(0).observed(), 0.2);
  EXPECT_FALSE(report.thresholds(0).passed());

  v1::RunReport clean = Completed(1000, 5);
  JudgeRun(&clean);
  EXPECT_EQ(clean.verdict(), v1::RunReport::VERDICT_PASS);
  EXPECT_TRUE(clean.thresholds(0).is_default());
}

TEST(VerdictTest, TheSpecsThresholdsReplaceTheDefault) {
  v1::RunReport report = Completed(1000, 200);
  report.mutable_spec()->add_thresholds("error_rate < 0.5");
  JudgeRun(&report);
  EXPECT_EQ(report.verdict(), v1::RunReport::VERDICT_PASS);
  ASSERT_EQ(report.thresholds_size(), 1);
  EXPECT_FALSE(report.thresholds(0).is_default());
}

TEST(VerdictTest, AnUnfinishedRunOrAnAgentsProblemFails) {
  v1::RunReport cancelled = Completed(10, 0);
  cancelled.set_state(v1::RunReport::STATE_CANCELLED);
  JudgeRun(&cancelled);
  EXPECT_EQ(cancelled.verdict(), v1::RunReport::VERDICT_FAIL);
  v1::RunReport lost = Completed(10, 0);
  lost.mutable_agents(0)->set_problem("lost 1.0s into the run");
  JudgeRun(&lost);
  EXPECT_EQ(lost.verdict(), v1::RunReport::VERDICT_FAIL);
}

TEST(VerdictTest, JudgingTwiceGivesTheSameThresholds) {
  v1::RunReport report = Completed(10, 0);
  JudgeRun(&report);
  JudgeRun(&report);
  EXPECT_EQ(report.thresholds_size(), 1);
}

// Every verdict says why, with units: each rule that failed, or the one line for a pass.
TEST(VerdictTest, EveryVerdictSaysWhyWithUnits) {
  v1::RunReport failed = Completed(1000, 200);
  failed.mutable_spec()->add_thresholds("connect_p99 < 10ms");
  failed.mutable_spec()->add_thresholds("error_rate < 0.5");
  failed.mutable_latency()->mutable_connect()->set_p99_ms(25.4);
  failed.mutable_agents(0)->set_problem("lost 1.0s into the run");
  failed.set_state(v1::RunReport::STATE_CANCELLED);
  JudgeRun(&failed);
  ASSERT_EQ(failed.verdict_reasons_size(), 3) << failed.DebugString();
  EXPECT_EQ(failed.verdict_reasons(0), "the run was cancelled before its end");
  EXPECT_EQ(failed.verdict_reasons(1),
            "threshold connect_p99 < 10ms failed: observed 25.4 ms, limit < 10 ms");
  EXPECT_EQ(failed.verdict_reasons(2), "agent a1: lost 1.0s into the run");

  v1::RunReport passed = Completed(1000, 5);
  JudgeRun(&passed);
  ASSERT_EQ(passed.verdict(), v1::RunReport::VERDICT_PASS);
  ASSERT_EQ(passed.verdict_reasons_size(), 1);
  EXPECT_EQ(passed.verdict_reasons(0),
            "the run completed, no agent was lost or refused, and every threshold held "
            "(error_rate < 0.01 (the default): observed 0.5%)");
  // Values read in fixed notation, with the digits that tell the observed value from its limit.
  v1::RunReport slow = Completed(1000, 0);
  slow.mutable_spec()->add_thresholds("connect_p99 < 2s");
  slow.mutable_spec()->add_thresholds("connect_max <= 10ms");
  slow.mutable_latency()->mutable_connect()->set_p99_ms(1500);
  slow.mutable_latency()->mutable_connect()->set_max_ms(10.004);
  JudgeRun(&slow);
  ASSERT_EQ(slow.verdict_reasons_size(), 1) << slow.DebugString();
  EXPECT_EQ(slow.verdict_reasons(0),
            "threshold connect_max <= 10ms failed: observed 10.004 ms, limit <= 10 ms");
  EXPECT_EQ(slow.thresholds(0).passed(), true);
  // Judged again (a report rebuilt), the reasons are not repeated.
  JudgeRun(&passed);
  EXPECT_EQ(passed.verdict_reasons_size(), 1);
}

}  // namespace
}  // namespace churnlab::analysis
