#include "analysis/verdict.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/threshold.h"

namespace churnlab::analysis {

namespace {

// Why a run that did not complete fails, whatever its thresholds say.
std::string StateReason(v1::RunReport::State state) {
  switch (state) {
    case v1::RunReport::STATE_CANCELLED:
      return "the run was cancelled before its end";
    case v1::RunReport::STATE_FAILED:
      return "the run failed: no agent could run it";
    case v1::RunReport::STATE_INTERRUPTED:
      return "the run was interrupted: the coordinator stopped while it ran";
    default:
      return "the run did not complete";
  }
}

// "threshold connect_p99 < 10ms failed: observed 25.4 ms, limit < 10 ms"; more digits where the
// observed value and the limit would otherwise read the same.
std::string ThresholdReason(const Threshold& t, const v1::ThresholdResult& result) {
  int extra = 0;
  while (extra < 6 && result.observed() != t.value &&
         FormatMetricValue(t.metric, result.observed(), extra) ==
             FormatMetricValue(t.metric, t.value, extra)) {
    ++extra;
  }
  return absl::StrCat("threshold ", result.expression(),
                      result.is_default() ? " (the default: the spec sets no thresholds)" : "",
                      result.passed() ? " passed" : " failed", ": observed ",
                      FormatMetricValue(t.metric, result.observed(), extra), ", limit ",
                      OpText(t.op), " ", FormatMetricValue(t.metric, t.value, extra));
}

// "error_rate < 0.01: observed 0.5%": a threshold that held, in the pass line.
std::string HeldReason(const Threshold& t, const v1::ThresholdResult& result) {
  return absl::StrCat(result.expression(), result.is_default() ? " (the default)" : "",
                      ": observed ", FormatMetricValue(t.metric, result.observed()));
}

}  // namespace

void JudgeRun(v1::RunReport* report) {
  report->clear_thresholds();
  report->clear_verdict_reasons();
  const bool completed = report->state() == v1::RunReport::STATE_COMPLETED;
  bool passed = completed;
  if (!completed) report->add_verdict_reasons(StateReason(report->state()));
  bool is_default = report->spec().thresholds().empty();
  std::vector<std::string> expressions(report->spec().thresholds().begin(),
                                       report->spec().thresholds().end());
  if (is_default) expressions.push_back(kDefaultThreshold);
  std::vector<std::string> held;
  for (const std::string& expression : expressions) {
    absl::StatusOr<Threshold> threshold = ParseThreshold(expression);
    if (!threshold.ok()) continue;  // validated at StartRun
    double observed = ObservedMetric(*threshold, *report);
    v1::ThresholdResult* result = report->add_thresholds();
    result->set_expression(threshold->expression);
    result->set_observed(observed);
    result->set_passed(ThresholdPasses(*threshold, observed));
    result->set_is_default(is_default);
    passed = passed && result->passed();
    if (result->passed()) {
      held.push_back(HeldReason(*threshold, *result));
    } else {
      report->add_verdict_reasons(ThresholdReason(*threshold, *result));
    }
  }
  for (const v1::AgentReport& agent : report->agents()) {
    if (agent.problem().empty()) continue;
    passed = false;
    report->add_verdict_reasons(absl::StrCat("agent ", agent.name(), ": ", agent.problem()));
  }
  report->set_verdict(passed ? v1::RunReport::VERDICT_PASS : v1::RunReport::VERDICT_FAIL);
  if (passed) {
    report->add_verdict_reasons(
        absl::StrCat("the run completed, no agent was lost or refused, and every threshold held",
                     held.empty() ? "" : absl::StrCat(" (", absl::StrJoin(held, "; "), ")")));
  }
}

}  // namespace churnlab::analysis
