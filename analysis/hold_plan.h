// `churnlab budget --hold=N`: how many connections a host holds at once, the least of its
// four-tuples, fs.file-max and memory, and the source IPs N needs (tuple_budget_plan.cc).
#pragma once

#include <cstdint>

#include "analysis/tuple_budget.h"
#include "churnlab/v1/report.pb.h"

namespace churnlab::analysis {

// For `in.hold` connections, with each of `sources` source IPs offering `facts`' ports x
// destinations: what binds first, and the source IPs needed.
v1::HoldPlan PlanHold(const PlanInputs& in, const SourceFacts& facts, uint32_t sources);

}  // namespace churnlab::analysis
