// Builds the telemetry of a running shard: the engine's counters plus what the kernel says about
// the shard's source IPs (ports in use, TCP states, peaks) and the host (counter deltas since
// the shard started, socket totals).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "agent/engine_snapshot.h"
#include "agent/socket_census.h"
#include "churnlab/v1/telemetry.pb.h"

namespace churnlab {

class ShardTelemetryCollector {
 public:
  // Takes the kernel counters' baseline now.
  ShardTelemetryCollector(std::string run_id, std::vector<SocketAddress> targets,
                          uint64_t port_range_size);

  // The cumulative telemetry for `snapshot`; peaks are the largest seen over all calls.
  v1::ShardTelemetry Collect(const EngineSnapshot& snapshot, bool final);

 private:
  struct Peaks {
    uint64_t ports_in_use = 0;
    uint64_t time_wait = 0;
  };
  void AddSockets(const SourceSockets& sockets, v1::SourceCounts* out);

  std::string run_id_;
  std::vector<SocketAddress> targets_;
  uint64_t port_range_size_;
  std::map<std::string, int64_t> baseline_;
  std::map<std::string, Peaks> peaks_;
};

}  // namespace churnlab
