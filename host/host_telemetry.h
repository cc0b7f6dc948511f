// The host's side of telemetry, shared by an agent's shards and an observing target: kernel
// counter deltas since a baseline, socket totals, sockets by TCP state; and the observer's view
// of its own listening addresses.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "churnlab/v1/telemetry.pb.h"
#include "common/net_address.h"
#include "host/socket_census.h"

namespace churnlab {

// The reported kernel counters now, conntrack's among them when the kernel has it (empty when
// /proc/net is unreadable).
std::map<std::string, int64_t> KernelCountersNow();
// Counter deltas since `baseline`, socket totals now, and the conntrack table (when the kernel
// has one) with the most entries seen, kept in `*conntrack_peak` between calls.
void FillHostTelemetry(const std::map<std::string, int64_t>& baseline, v1::HostTelemetry* host,
                       uint64_t* conntrack_peak);

// A target's view, for a target attached as an observer: host counter deltas since it started,
// socket totals, and its listening addresses' sockets by state.
class ObserverTelemetryCollector {
 public:
  explicit ObserverTelemetryCollector(std::vector<SocketAddress> listen);
  v1::ShardTelemetry Collect();

 private:
  std::vector<SocketAddress> listen_;
  std::map<std::string, int64_t> baseline_;
  uint64_t conntrack_peak_ = 0;
};

}  // namespace churnlab
