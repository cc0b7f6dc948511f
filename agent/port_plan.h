// Bind mode engine: the ports this host lets the engine pick, read where the engine runs as the
// shard starts. The range is ip_local_port_range; left out are reserved ports, those bind() took
// on the host (the kernel's connect() skips them too), and those the run's sources hold toward
// its targets already (an earlier run's TIME_WAIT, another program's connections). A port is
// taken again toward a destination once its TIME_WAIT has ended, or tcp_tw_reuse's delay has
// passed where the kernel would reuse the tuple for certain: loopback connections, whose both
// ends have this kernel's tcp_timestamps (a remote peer may not send timestamps, and then the
// tuple waits its full TIME_WAIT).
#pragma once

#include "absl/status/statusor.h"
#include "common/engine_params.h"
#include "host/socket_census.h"

namespace churnlab {

// The plan for `params` (its targets and source IPs decide whether the connections are loopback
// ones; with `destinations_may_change`, names looked up again while it runs, only loopback
// sources say so). FAILED_PRECONDITION when the port range cannot be read.
// `range_use`: the port range's use now (TakeRangeUse), whose bind() ports are left out.
absl::StatusOr<PortPlan> HostPortPlan(const EngineParams& params, bool destinations_may_change,
                                      const absl::StatusOr<RangeUse>& range_use);

}  // namespace churnlab
