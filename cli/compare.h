// `churnlab compare`: the single-source twin of a spec (the pair's reading is
// analysis::CompareSummary).
#pragma once

#include <string>
#include <vector>

#include "churnlab/v1/report.pb.h"
#include "churnlab/v1/spec.pb.h"

namespace churnlab {

// The spec narrowed to one agent and one source IP (the first of those it would use).
v1::RunSpec SingleSourceSpec(const v1::RunSpec& spec);
// The first source IP a run used ("" if none reported).
std::string FirstSourceIp(const v1::RunReport& report);

}  // namespace churnlab
