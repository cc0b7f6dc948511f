#include "cli/compare.h"

#include "proto/run_spec.h"

namespace churnlab {

v1::RunSpec SingleSourceSpec(const v1::RunSpec& spec) {
  v1::RunSpec single = spec;
  single.set_name(spec.name().empty() ? "single source" : spec.name() + " (single source)");
  if (spec.agent_names_size() > 0) {
    single.clear_agent_names();
    single.add_agent_names(spec.agent_names(0));
  } else {
    single.set_agents(1);
  }
  if (spec.source_ips_size() > 0) {
    single.clear_source_ips();
    single.add_source_ips(spec.source_ips(0));
  } else if (BindsSourceIps(spec.bind_mode())) {
    single.set_source_ips_per_agent(1);
  }
  return single;
}

std::string FirstSourceIp(const v1::RunReport& report) {
  for (const v1::AgentReport& agent : report.agents()) {
    for (const v1::SourceReport& source : agent.sources()) return source.ip();
  }
  return "";
}

}  // namespace churnlab
