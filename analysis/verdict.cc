#include "analysis/verdict.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/threshold.h"

namespace churnlab::analysis {

void JudgeRun(v1::RunReport* report) {
  report->clear_thresholds();
  bool passed = report->state() == v1::RunReport::STATE_COMPLETED;
  bool is_default = report->spec().thresholds().empty();
  std::vector<std::string> expressions(report->spec().thresholds().begin(),
                                       report->spec().thresholds().end());
  if (is_default) expressions.push_back(kDefaultThreshold);
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
  }
  for (const v1::AgentReport& agent : report->agents()) passed = passed && agent.problem().empty();
  report->set_verdict(passed ? v1::RunReport::VERDICT_PASS : v1::RunReport::VERDICT_FAIL);
}

}  // namespace churnlab::analysis
