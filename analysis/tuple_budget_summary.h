// The tuple budget's summary: whether it binds the run, in one sentence, from the budget
// ComputeTupleBudget computed (tuple_budget.cc).
#pragma once

#include <string>

#include "analysis/run_shape.h"
#include "churnlab/v1/report.pb.h"
#include "churnlab/v1/spec.pb.h"

namespace churnlab::analysis {

std::string TupleBudgetSummary(const v1::RunSpec& spec, const RunShape& shape,
                               const v1::TupleBudget& budget);

}  // namespace churnlab::analysis
