// churnlab-churn's run as the coordinator's report would give it (RunReport, one agent "local"):
// what `churnlab-churn --json` prints, so scripts and benchmarks read one format.
#pragma once

#include <vector>

#include "agent/engine_snapshot.h"
#include "churnlab/v1/report.pb.h"
#include "common/engine_params.h"
#include "common/target_names.h"

namespace churnlab {

// The report of a run of `params` whose final counts are `snapshot`; `resolved` are the target
// names and what they resolved to. No kernel figures: the engine alone.
v1::RunReport LocalReport(const EngineParams& params, const EngineSnapshot& snapshot,
                          const std::vector<Resolution>& resolved);

}  // namespace churnlab
