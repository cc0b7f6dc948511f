#include "analysis/compare_summary.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/tuple_budget.h"

namespace churnlab::analysis {
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

std::string FirstSource(const v1::RunReport& r) {
  for (const v1::AgentReport& agent : r.agents()) {
    for (const v1::SourceReport& source : agent.sources()) return source.ip();
  }
  return "";
}

// The first second in which EADDRNOTAVAIL appeared, or -1.
double FirstExhaustion(const v1::RunReport& r) {
  for (const v1::SeriesPoint& p : r.series()) {
    if (p.errors().count("EADDRNOTAVAIL") > 0) return p.t_s();
  }
  return -1;
}

// Why TIME_WAIT does not bound a source, as a clause; "" when it does (or is unknown).
std::string Lifted(v1::PortLimit limit) {
  switch (limit) {
    case v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS:
      return "tcp_max_tw_buckets is below it, so the kernel destroys TIME_WAIT sockets early "
             "and it does not bind";
    case v1::PORT_LIMIT_NO_CLIENT_TIME_WAIT:
      return "the client keeps no TIME_WAIT under this close policy, so it does not bind";
    default:
      return "";
  }
}

std::string SingleLine(const v1::RunReport& single) {
  const v1::TupleBudget& b = single.tuple_budget();
  std::string per_source;
  std::string lifted;
  if (b.sources_size() > 0) {
    const v1::SourceBudget& s = b.sources(0);
    // A report stored before hold_s existed held every tuple for TIME_WAIT.
    double hold = s.hold_s() > 0 ? s.hold_s() : b.time_wait_s();
    per_source = absl::StrFormat(" (%d ports x %d destination(s) / %g s of %s)", s.ports(),
                                 s.destinations(), hold, HoldName(s.limit()));
    lifted = Lifted(s.limit());
  }
  std::string line = absl::StrFormat(
      "From one source IP (%s) the budget is %.0f new connections/s%s%s; asked for %.0f/s it "
      "achieved %.0f/s",
      FirstSource(single), b.total_rate(), per_source, lifted.empty() ? "" : ", but " + lifted,
      single.requested_rate(), single.achieved_rate());
  uint64_t no_port = ErrorsOf(single, "EADDRNOTAVAIL");
  if (no_port > 0) {
    double first = FirstExhaustion(single);
    absl::StrAppendFormat(&line, ", and its ports ran out%s: %d connects failed with EADDRNOTAVAIL",
                          first >= 0 ? absl::StrFormat(" after about %.0f s", first) : "", no_port);
  }
  return line + ".";
}

}  // namespace

std::vector<std::string> CompareSummary(const v1::RunReport& single,
                                        const v1::RunReport& distributed) {
  std::vector<std::string> out;
  const v1::TupleBudget& b2 = distributed.tuple_budget();
  out.push_back(SingleLine(single));
  out.push_back(absl::StrFormat(
      "Spread over %d source IP(s) on %d agent(s) the budget is %.0f/s; it achieved %.0f/s with "
      "%d failure(s).",
      SourceCount(distributed), distributed.agents_size(), b2.total_rate(),
      distributed.achieved_rate(), distributed.totals().failed()));
  // exhaustion_after_s is set only where TIME_WAIT binds (see the budget's `limit`).
  double soonest = 0;
  for (const v1::SourceBudget& s : b2.sources()) {
    if (s.exhaustion_after_s() > 0 && (soonest == 0 || s.exhaustion_after_s() < soonest)) {
      soonest = s.exhaustion_after_s();
    }
  }
  uint64_t no_port = ErrorsOf(single, "EADDRNOTAVAIL");
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
    bool lifted = single.tuple_budget().sources_size() > 0 &&
                  !Lifted(single.tuple_budget().sources(0).limit()).empty();
    out.push_back(lifted ? "One source was enough at this rate: TIME_WAIT did not bound it."
                         : "One source was enough at this rate: its budget was not reached.");
  }
  for (const std::string& note : b2.notes()) out.push_back("Note: " + note + ".");
  return out;
}

}  // namespace churnlab::analysis
