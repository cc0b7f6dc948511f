// `churnlab compare`'s reading of its two runs (one source IP, then spread) in a few sentences,
// from their reports' tuple budgets and outcomes.
#pragma once

#include <string>
#include <vector>

#include "churnlab/v1/report.pb.h"

namespace churnlab::analysis {

std::vector<std::string> CompareSummary(const v1::RunReport& single,
                                        const v1::RunReport& distributed);

}  // namespace churnlab::analysis
