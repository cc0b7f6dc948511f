#include "analysis/tuple_budget_summary.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/tuple_budget.h"

namespace churnlab::analysis {
namespace {

std::string Rate(double rate) { return absl::StrFormat("%.0f", rate); }

// What a closed tuple is held for, in words: the longest hold of the sources.
std::string HoldWords(const v1::TupleBudget& budget) {
  bool time_wait = false;
  double reuse = 0;
  double takeover = 0;
  for (const v1::SourceBudget& s : budget.sources()) {
    time_wait = time_wait || s.limit() == v1::PORT_LIMIT_TIME_WAIT;
    if (s.limit() == v1::PORT_LIMIT_TW_REUSE) reuse = std::max(reuse, s.hold_s());
    if (s.limit() == v1::PORT_LIMIT_TAKEN_OVER) takeover = std::max(takeover, s.hold_s());
  }
  if (takeover > 0 && !time_wait && reuse == 0) {
    return absl::StrFormat("%g s of %s", takeover, HoldName(v1::PORT_LIMIT_TAKEN_OVER));
  }
  std::string words = absl::StrFormat("%.0f s of TIME_WAIT", budget.time_wait_s());
  if (reuse == 0) return words;
  std::string delay = absl::StrFormat("%g s of tcp_tw_reuse_delay", reuse);
  return time_wait ? absl::StrCat(words, " (", delay, " where tcp_tw_reuse applies)") : delay;
}

// The summary when `binding` sources are asked for more than they sustain; the first is
// expected to run out of ports after `soonest` seconds. A prediction, worded as one: the
// report's observations say what happened.
std::string Binding(const v1::RunSpec& spec, const RunShape& shape, const v1::TupleBudget& budget,
                    int binding, double soonest) {
  std::string head = absl::StrFormat(
      "%d of %d source IP(s) are asked for more than their ports x destinations / %s sustain "
      "(%s new connections/s in all, %s/s requested)",
      binding, budget.sources_size(), HoldWords(budget), Rate(budget.total_rate()),
      Rate(spec.rate()));
  if (shape.duration_s > 0 && soonest > shape.duration_s) {
    return absl::StrFormat(
        "%s; their ports would run out after about %s s, but this %.0f s run ends first. A "
        "longer run would hit the four-tuple limit.",
        head, ApproxSeconds(soonest), shape.duration_s);
  }
  return absl::StrFormat(
      "The four-tuple limit is predicted to bind: %s, so their ports would run out after about "
      "%s s; then %s fails for whatever is asked above the budget. More source IPs or "
      "destination ports lift it.",
      head, ApproxSeconds(soonest), BindReservesPort(shape.bind) ? "bind()" : "connect()");
}

}  // namespace

std::string TupleBudgetSummary(const v1::RunSpec& spec, const RunShape& shape,
                               const v1::TupleBudget& budget) {
  int n = budget.sources_size();
  int known = 0;
  int buckets = 0;
  int binding = 0;
  double soonest = std::numeric_limits<double>::infinity();
  for (const v1::SourceBudget& s : budget.sources()) {
    known += s.limit() != v1::PORT_LIMIT_UNSPECIFIED;
    buckets += s.limit() == v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS;
    if (s.exhaustion_after_s() > 0) {
      ++binding;
      soonest = std::min(soonest, s.exhaustion_after_s());
    }
  }
  if (known == 0) return "";
  std::string total = Rate(budget.total_rate());
  if (shape.close != ClosePolicy::kClientFin) {
    return absl::StrCat("Close policy ", ClosePolicyName(shape.close),
                        ": the client keeps no TIME_WAIT, so the tuple budget (", total,
                        "/s) does not bind here.");
  }
  if (binding > 0) return Binding(spec, shape, budget, binding, soonest);
  if (buckets == n) {
    return absl::StrCat(
        "tcp_max_tw_buckets caps TIME_WAIT below the ports: the kernel destroys "
        "TIME_WAIT sockets early (TCPTimeWaitOverflow) instead of running out of "
        "ports, so the tuple budget (",
        total, "/s) does not bind here.");
  }
  if (spec.rate() <= 0) {
    return absl::StrFormat(
        "%d source IP(s) can sustain %s new connections/s with %s; a closed-model run goes as "
        "fast as the target answers, so ports run out if it beats that.",
        n, total, HoldWords(budget));
  }
  return absl::StrFormat(
      "The tuple budget (%s/s over %d source IP(s), with %s) is above the requested %s/s: ports "
      "are not the limit for this run.",
      total, n, HoldWords(budget), Rate(spec.rate()));
}

}  // namespace churnlab::analysis
