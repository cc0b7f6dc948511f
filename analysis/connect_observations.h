// What a run's series says about connect() itself as the port range filled: the kernel's
// free-port search slowing from about half full, or bind mode engine keeping it flat.
#pragma once

#include <string>

#include "churnlab/v1/report.pb.h"

namespace churnlab::analysis {

// Connect p99 while the fullest source's port range was at least half full, against while it
// was under 40% full (the kernel's port search slows from about half full), as a sentence; ""
// when the series shows no such slowdown.
std::string ObserveConnectSlowdown(const v1::RunReport& report);
// Bind mode engine with a source's range past half full: connect()'s p99 with no port search,
// and what no-port's would do; "" otherwise.
std::string ObserveEnginePorts(const v1::RunReport& report);

}  // namespace churnlab::analysis
