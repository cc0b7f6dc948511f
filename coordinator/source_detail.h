// How much per-source detail what the coordinator sends often may carry. A run's agents can
// bring 4,096 source IPs each; a series point (stored every second, sent to every watcher) and a
// live run's frame on the dashboard's event stream keep the fullest sources only, and say how
// many they left out, so that their size does not grow with agents x addresses. The stored
// report keeps every source.
#pragma once

#include <cstddef>

#include "churnlab/v1/report.pb.h"

namespace churnlab {

// Sources one series point keeps over all its agents (their states and ports still counted in
// the agent's tcp_states and the point's time_wait and max_port_fill).
inline constexpr size_t kMaxPointSources = 64;
// Sources a live run's summary keeps over all its agents (AgentReport.sources_omitted).
inline constexpr size_t kMaxViewerSources = 64;

// Leaves the `keep` fullest sources of `point` (ports in use over the agent's range; ties in
// order), in their order, and counts the rest in each agent's sources_omitted.
void KeepFullestSources(v1::SeriesPoint* point, size_t keep = kMaxPointSources);

// A run's report for those who follow it (the dashboard's event stream, WatchRun's progress):
// the fullest kMaxViewerSources sources by peak fill (the tuple budget's and held connections'
// lists follow them), and its newest series point only, trimmed alike. The whole report is one
// GetRun (/api/runs/ID) away.
v1::RunReport ViewerSummary(const v1::RunReport& report);

}  // namespace churnlab
