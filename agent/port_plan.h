// Bind mode engine: the ports this host lets the engine pick, read where the engine runs as the
// shard starts. The range is ip_local_port_range; left out are reserved ports, those bind() took
// on the host (the kernel's connect() skips them too), and those the run's sources hold toward
// its targets already (an earlier run's TIME_WAIT, another program's connections). A port closed
// first by this side is taken again toward its destination once its TIME_WAIT has ended
// (reuse_after); where the connection had TCP timestamps the engine takes the TIME_WAIT over
// a retransmission timeout after the close instead (EngineWorker asks TCP_INFO).
#pragma once

#include "absl/status/statusor.h"
#include "common/engine_params.h"
#include "host/socket_census.h"

namespace churnlab {

// The plan for `params`: FAILED_PRECONDITION when the port range cannot be read.
// `range_use`: the port range's use now (TakeRangeUse), whose bind() ports are left out.
absl::StatusOr<PortPlan> HostPortPlan(const EngineParams& params,
                                      const absl::StatusOr<RangeUse>& range_use);

}  // namespace churnlab
