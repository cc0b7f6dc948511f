// `churnlab budget`: the tuple budget planner. No coordinator, no agents: a client host described
// by flags (or a preset: linux, windows, windows-legacy), planned with the reports' own budget
// computation (analysis/tuple_budget.h).
#pragma once

#include <string>

#include "churnlab/v1/report.pb.h"

namespace churnlab {

// 0 when no --rate was given or the ports do not run out at it, 1 when they do, 2 bad input.
int BudgetCommand(int argc, char** argv);

// The plan as `churnlab budget` prints it without --json.
std::string FormatBudgetPlan(const v1::BudgetPlan& plan);

}  // namespace churnlab
