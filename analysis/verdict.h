// A finished run's verdict: its thresholds evaluated, and "pass" only when the run completed,
// every threshold passed and no agent refused or was lost.
#pragma once

#include "churnlab/v1/report.pb.h"

namespace churnlab::analysis {

// Applied when the spec sets no thresholds, so that a run with failures is never called a pass.
inline constexpr char kDefaultThreshold[] = "error_rate < 0.01";

// Fills the report's thresholds (the spec's, or kDefaultThreshold marked is_default) and its
// verdict, from its state, totals, latency and agents.
void JudgeRun(v1::RunReport* report);

}  // namespace churnlab::analysis
