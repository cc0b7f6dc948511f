// Prometheus text exposition (format 0.0.4) of the coordinator's state: per agent and source IP
// of each running run, connections attempted/succeeded/failed (by error), ports in use and TCP
// states; run progress; agents by state; coordinator health.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "churnlab/v1/control.pb.h"
#include "churnlab/v1/report.pb.h"

namespace churnlab {

struct CoordinatorHealth {
  absl::Time started_at;
  uint64_t telemetry_messages = 0;
  uint64_t store_errors = 0;  // run-store writes that failed
};

// `running`: each run's report with its newest series point (Coordinator::RunningReports()).
std::string RenderMetrics(const std::vector<v1::AgentInfo>& agents,
                          const std::vector<v1::RunReport>& running,
                          const CoordinatorHealth& health);

}  // namespace churnlab
