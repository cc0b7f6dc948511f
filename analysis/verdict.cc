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

// "connect_p99 < 10ms: observed 25.4 ms, limit 10 ms" (and whether it is the default rule).
std::string ThresholdReason(const Threshold& t, const v1::ThresholdResult& result) {
  return absl::StrCat("threshold ", result.expression(),
                      result.is_default() ? " (the default: the spec sets no thresholds)" : "",
                      result.passed() ? " passed" : " failed", ": observed ",
                      FormatMetricValue(t.metric, result.observed()), ", limit ", OpText(t.op), " ",
                      FormatMetricValue(t.metric, t.value));
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
      held.push_back(ThresholdReason(*threshold, *result));
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
        absl::StrCat("the run completed, no agent was lost or refused, and every threshold held: ",
                     absl::StrJoin(held, "; ")));
  }
}

}  // namespace churnlab::analysis
