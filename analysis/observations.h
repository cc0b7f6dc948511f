// Plain sentences on what a finished run's numbers mean: port exhaustion, a full listen queue,
// connect() slowing as the port range fills, lost agents, the server side.
#pragma once

#include <string>
#include <vector>

#include "churnlab/v1/report.pb.h"

namespace churnlab::analysis {

// From the report alone, which must carry its series (the connect slowdown is read from it) and
// its observers' sysctls (what tcp_abort_on_overflow does depends on the server's setting).
std::vector<std::string> Observe(const v1::RunReport& report);

}  // namespace churnlab::analysis
