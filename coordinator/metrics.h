// The coordinator's /metrics, Prometheus text exposition (format 0.0.4): its health, agents by
// state, and the runs (RunMetrics: per run name, the newest run's gauges and counters over every
// run of the name, the connect-latency histogram, the target's side from its observer).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "churnlab/v1/control.pb.h"
#include "coordinator/grpc_door.h"
#include "coordinator/run_metrics.h"
#include "http/http_server.h"

namespace churnlab {

struct CoordinatorHealth {
  absl::Time started_at;
  uint64_t telemetry_messages = 0;
  uint64_t store_errors = 0;               // run-store writes that failed
  uint64_t telemetry_entries_refused = 0;  // dropped or clamped as they entered
  uint64_t stalls = 0;                     // its ticker overslept (CreditStall)
  absl::Duration stalled;                  // their total length
  uint64_t attaches_refused = 0;           // agents turned away at --max-agents
  uint64_t watches_refused = 0;            // WatchRun streams turned away at the cap
  // Each door's connections: open now, refused at its cap.
  HttpServer::Counters http_connections;
  std::optional<GrpcDoor::Counts> grpc_connections;
};

std::string RenderMetrics(const std::vector<v1::AgentInfo>& agents, RunMetrics* runs,
                          const CoordinatorHealth& health);

}  // namespace churnlab
