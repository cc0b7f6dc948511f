#include "cli/compare.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace churnlab {
namespace {

uint64_t ErrorsOf(const v1::RunReport& r, const char* key) {
  auto it = r.errors().find(key);
  return it == r.errors().end() ? 0 : it->second;
}

int SourceCount(const v1::RunReport& r) {
  int n = 0;
  for (const v1::AgentReport& agent : r.agents()) n += agent.sources_size();
  return n;
}

// The first second in which EADDRNOTAVAIL appeared, or -1.
double FirstExhaustion(const v1::RunReport& r) {
  for (const v1::SeriesPoint& p : r.series()) {
    if (p.errors().count("EADDRNOTAVAIL") > 0) return p.t_s();
  }
  return -1;
}

}  // namespace

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
  } else if (spec.bind_mode() != "none") {
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

std::vector<std::string> CompareSummary(const v1::RunReport& single,
                                        const v1::RunReport& distributed) {
  std::vector<std::string> out;
  const v1::TupleBudget& b1 = single.tuple_budget();
  const v1::TupleBudget& b2 = distributed.tuple_budget();
  std::string per_source;
  if (b1.sources_size() > 0) {
    const v1::SourceBudget& s = b1.sources(0);
    per_source = absl::StrFormat(" (%d ports x %d destination(s) / %.0f s of TIME_WAIT)", s.ports(),
                                 s.destinations(), b1.time_wait_s());
  }
  uint64_t no_port = ErrorsOf(single, "EADDRNOTAVAIL");
  std::string line = absl::StrFormat(
      "From one source IP (%s) the budget is %.0f new connections/s%s; asked for %.0f/s it "
      "achieved %.0f/s",
      FirstSourceIp(single), b1.total_rate(), per_source, single.requested_rate(),
      single.achieved_rate());
  double first = FirstExhaustion(single);
  if (no_port > 0) {
    absl::StrAppendFormat(&line, ", and its ports ran out%s: %d connects failed with EADDRNOTAVAIL",
                          first >= 0 ? absl::StrFormat(" after about %.0f s", first) : "", no_port);
  }
  out.push_back(line + ".");
  out.push_back(absl::StrFormat(
      "Spread over %d source IP(s) on %d agent(s) the budget is %.0f/s; it achieved %.0f/s with "
      "%d failure(s).",
      SourceCount(distributed), distributed.agents_size(), b2.total_rate(),
      distributed.achieved_rate(), distributed.totals().failed()));
  double soonest = 0;
  for (const v1::SourceBudget& s : b2.sources()) {
    if (s.exhaustion_after_s() > 0 && (soonest == 0 || s.exhaustion_after_s() < soonest)) {
      soonest = s.exhaustion_after_s();
    }
  }
  if (soonest > 0 && ErrorsOf(distributed, "EADDRNOTAVAIL") == 0) {
    out.push_back(absl::StrFormat(
        "The spread run asked for more than its sustainable budget but ended first: at this rate "
        "its ports would run out after about %.0f s.",
        soonest));
  }
  if (no_port > 0 && ErrorsOf(distributed, "EADDRNOTAVAIL") == 0) {
    out.push_back(
        "More source IPs multiplied the four-tuples available: the client's port "
        "budget, not the target, was the limit.");
  } else if (single.totals().failed() == 0) {
    out.push_back(
        "One source was enough at this rate: its budget was not reached (or TIME_WAIT "
        "reuse lifted it).");
  }
  for (const std::string& note : b2.notes()) out.push_back("Note: " + note + ".");
  return out;
}

}  // namespace churnlab
