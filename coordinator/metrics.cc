#include "coordinator/metrics.h"

#include <map>

#include "http/prometheus_text.h"
#include "proto/message_json.h"

namespace churnlab {
namespace {

// Each door's connections: open, and refused at its cap.
void AppendDoorFamilies(const CoordinatorHealth& health, std::string* out) {
  MetricFamily connections("churnlab_coordinator_connections", "gauge",
                           "Connections open at each door (grpc: handed to gRPC and not seen "
                           "closed at its last count; http: open now).");
  MetricFamily connections_refused(
      "churnlab_coordinator_connections_refused_total", "counter",
      "Connections closed as they came because the door's cap was reached "
      "(--grpc-max-connections, --http-max-connections).");
  connections.Add({{"door", "http"}},
                  static_cast<double>(health.http_connections.open_connections));
  connections_refused.Add({{"door", "http"}},
                          static_cast<double>(health.http_connections.over_connection_cap));
  if (health.grpc_connections.has_value()) {
    connections.Add({{"door", "grpc"}}, static_cast<double>(health.grpc_connections->open));
    connections_refused.Add({{"door", "grpc"}},
                            static_cast<double>(health.grpc_connections->refused));
  }
  connections.AppendTo(out);
  connections_refused.AppendTo(out);
}

}  // namespace

std::string RenderMetrics(const std::vector<v1::AgentInfo>& agents, RunMetrics* runs,
                          const CoordinatorHealth& health) {
  MetricFamily start_time("churnlab_coordinator_start_time_seconds", "gauge",
                          "When the coordinator started, seconds since the Unix epoch; counters "
                          "start again from 0 when it changes.");
  MetricFamily telemetry("churnlab_coordinator_telemetry_messages_total", "counter",
                         "Telemetry messages received from agents and observers.");
  MetricFamily store_errors("churnlab_coordinator_run_store_errors_total", "counter",
                            "Run-store writes that failed (a full disk, say); the runs are kept "
                            "and stored once the store writes again.");
  MetricFamily refused("churnlab_coordinator_telemetry_entries_refused_total", "counter",
                       "Telemetry entries no honest agent sends, dropped or clamped as they "
                       "entered: sources, listeners or names past their caps, failure codes "
                       "that are no code, counts past 2^48.");
  MetricFamily stalls("churnlab_coordinator_stalls_total", "counter",
                      "Times the coordinator's ticker overslept by over 250 ms (CPU contention, "
                      "a stopped process): that time is not counted as agents' silence.");
  MetricFamily stalled("churnlab_coordinator_stalled_seconds_total", "counter",
                       "The length of those stalls, summed.");
  MetricFamily attaches_refused("churnlab_coordinator_attaches_refused_total", "counter",
                                "Agents and observers refused because --max-agents were "
                                "attached.");
  MetricFamily watches_refused("churnlab_coordinator_watches_refused_total", "counter",
                               "WatchRun streams refused because 1024 already followed runs.");
  MetricFamily agent_count("churnlab_agents", "gauge",
                           "Agents known to the coordinator, by state.");
  MetricFamily runs_running("churnlab_runs_running", "gauge", "Runs in flight.");

  start_time.Add({}, absl::ToDoubleSeconds(health.started_at - absl::UnixEpoch()));
  telemetry.Add({}, static_cast<double>(health.telemetry_messages));
  store_errors.Add({}, static_cast<double>(health.store_errors));
  refused.Add({}, static_cast<double>(health.telemetry_entries_refused));
  stalls.Add({}, static_cast<double>(health.stalls));
  stalled.Add({}, absl::ToDoubleSeconds(health.stalled));
  attaches_refused.Add({}, static_cast<double>(health.attaches_refused));
  watches_refused.Add({}, static_cast<double>(health.watches_refused));
  std::map<std::string, int> by_state;  // every state, 0 included: by its word
  for (v1::AgentInfo::State state : {v1::AgentInfo::STATE_IDLE, v1::AgentInfo::STATE_RUNNING,
                                     v1::AgentInfo::STATE_OBSERVER, v1::AgentInfo::STATE_LOST}) {
    by_state[Word(state)] = 0;
  }
  for (const v1::AgentInfo& agent : agents) ++by_state[Word(agent.state())];
  for (const auto& [state, count] : by_state) agent_count.Add({{"state", state}}, count);

  std::string run_families;
  int running = 0;
  runs->AppendTo(&run_families, &running);
  runs_running.Add({}, running);

  std::string out;
  for (const MetricFamily* f : {&start_time, &telemetry, &store_errors, &refused, &stalls, &stalled,
                                &attaches_refused, &watches_refused, &agent_count, &runs_running}) {
    f->AppendTo(&out);
  }
  AppendDoorFamilies(health, &out);
  return out + run_families;
}

}  // namespace churnlab
