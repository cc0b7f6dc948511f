// Bind mode engine: the ports this host lets the engine pick, read where the engine runs as the
// shard starts. The range is ip_local_port_range; reserved ports and those bind() took on the
// host are left out (the kernel's connect() skips them too); a port is taken again toward a
// destination once its TIME_WAIT has ended, or tcp_tw_reuse's delay has passed where the kernel
// would reuse the tuple (tcp_tw_reuse 1, or 2 toward or from loopback, with timestamps on).
#pragma once

#include "absl/status/statusor.h"
#include "common/engine_params.h"

namespace churnlab {

// The plan for `params` (its targets and source IPs decide whether tcp_tw_reuse=2 applies).
// FAILED_PRECONDITION when the port range cannot be read.
absl::StatusOr<PortPlan> HostPortPlan(const EngineParams& params);

}  // namespace churnlab
