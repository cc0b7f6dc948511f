#include "coordinator/metrics.h"

#include <google/protobuf/util/time_util.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace churnlab {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// One metric family: its HELP and TYPE lines, then its samples.
class Family {
 public:
  Family(std::string name, const char* type, const char* help)
      : name_(std::move(name)), type_(type), help_(help) {}

  void Add(const Labels& labels, double value) {
    std::string line = name_;
    if (!labels.empty()) {
      line += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        absl::StrAppend(&line, i > 0 ? "," : "", labels[i].first, "=\"",
                        EscapeLabelValue(labels[i].second), "\"");
      }
      line += '}';
    }
    absl::StrAppend(&line, " ", absl::StrFormat("%.17g", value), "\n");
    samples_ += line;
  }

  void AppendTo(std::string* out) const {
    absl::StrAppend(out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " ", type_, "\n",
                    samples_);
  }

 private:
  std::string name_;
  const char* type_;
  const char* help_;
  std::string samples_;
};

}  // namespace

std::string RenderMetrics(const std::vector<v1::AgentInfo>& agents,
                          const std::vector<v1::RunReport>& running,
                          const CoordinatorHealth& health) {
  Family start_time("churnlab_coordinator_start_time_seconds", "gauge",
                    "When the coordinator started, seconds since the Unix epoch.");
  Family telemetry("churnlab_coordinator_telemetry_messages_total", "counter",
                   "Telemetry messages received from agents and observers.");
  Family store_errors("churnlab_coordinator_run_store_errors_total", "counter",
                      "Run-store writes that failed (a full disk, say); the runs are kept and "
                      "stored once the store writes again.");
  Family agent_count("churnlab_agents", "gauge", "Agents known to the coordinator, by state.");
  Family runs_running("churnlab_runs_running", "gauge", "Runs in flight.");
  Family elapsed("churnlab_run_elapsed_seconds", "gauge", "How long the run has been going.");
  Family planned("churnlab_run_planned_duration_seconds", "gauge",
                 "The run's load duration from its spec.");
  Family requested("churnlab_run_requested_connections_per_second", "gauge",
                   "The run's requested new-connection rate.");
  Family budget("churnlab_run_tuple_budget_connections_per_second", "gauge",
                "Sustainable new-connection rate under client-first close (the tuple budget).");
  Family attempted("churnlab_connections_attempted_total", "counter",
                   "Connections attempted, per run, agent and source IP.");
  Family succeeded("churnlab_connections_succeeded_total", "counter",
                   "Connections that completed, per run, agent and source IP.");
  Family failed("churnlab_connections_failed_total", "counter",
                "Connections that failed, per run, agent, source IP and error (errno name or "
                "engine outcome).");
  Family ports("churnlab_source_ports_in_use", "gauge",
               "Local ports the source IP has in use toward the run's targets (TIME_WAIT "
               "included).");
  Family range("churnlab_source_port_range_size", "gauge",
               "Size of the agent's ip_local_port_range.");
  Family states("churnlab_source_tcp_sockets", "gauge",
                "Sockets from the source IP toward the run's targets, by TCP state.");

  start_time.Add({}, absl::ToDoubleSeconds(health.started_at - absl::UnixEpoch()));
  telemetry.Add({}, static_cast<double>(health.telemetry_messages));
  store_errors.Add({}, static_cast<double>(health.store_errors));
  std::map<std::string, int> by_state = {{"idle", 0}, {"running", 0}, {"observer", 0}, {"lost", 0}};
  for (const v1::AgentInfo& agent : agents) ++by_state[agent.state()];
  for (const auto& [state, count] : by_state) agent_count.Add({{"state", state}}, count);
  runs_running.Add({}, static_cast<double>(running.size()));

  for (const v1::RunReport& run : running) {
    const Labels run_label = {{"run_id", run.run_id()}};
    elapsed.Add(run_label, run.duration_s());
    planned.Add(
        run_label,
        google::protobuf::util::TimeUtil::DurationToNanoseconds(run.spec().duration()) / 1e9);
    requested.Add(run_label, run.requested_rate());
    budget.Add(run_label, run.tuple_budget().total_rate());
    const v1::SeriesPoint* now =
        run.series_size() > 0 ? &run.series(run.series_size() - 1) : nullptr;
    for (int i = 0; i < run.agents_size(); ++i) {
      const v1::AgentReport& agent = run.agents(i);
      const v1::AgentPoint* agent_now =
          now != nullptr && i < now->agents_size() ? &now->agents(i) : nullptr;
      for (const v1::SourceReport& source : agent.sources()) {
        Labels labels = {
            {"run_id", run.run_id()}, {"agent", agent.name()}, {"source_ip", source.ip()}};
        attempted.Add(labels, static_cast<double>(source.attempted()));
        succeeded.Add(labels, static_cast<double>(source.succeeded()));
        range.Add(labels, static_cast<double>(source.port_range_size()));
        for (const auto& [error, count] : source.errors()) {
          Labels with_error = labels;
          with_error.emplace_back("error", error);
          failed.Add(with_error, static_cast<double>(count));
        }
        if (agent_now == nullptr) continue;
        for (const v1::SourcePoint& point : agent_now->sources()) {
          if (point.ip() != source.ip()) continue;
          ports.Add(labels, static_cast<double>(point.ports_in_use()));
          for (const auto& [state, count] : point.tcp_states()) {
            Labels with_state = labels;
            with_state.emplace_back("state", state);
            states.Add(with_state, static_cast<double>(count));
          }
        }
      }
    }
  }
  std::string out;
  for (const Family* f :
       {&start_time, &telemetry, &store_errors, &agent_count, &runs_running, &elapsed, &planned,
        &requested, &budget, &attempted, &succeeded, &failed, &ports, &range, &states}) {
    f->AppendTo(&out);
  }
  return out;
}

}  // namespace churnlab
