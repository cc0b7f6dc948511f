#include "analysis/tuple_budget.h"

#include <algorithm>
#include <limits>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace churnlab::analysis {
namespace {

constexpr char kTwReuse[] = "net.ipv4.tcp_tw_reuse";
constexpr char kMaxTwBuckets[] = "net.ipv4.tcp_max_tw_buckets";

// tcp_tw_reuse=2 reuses a TIME_WAIT tuple only when the connection is loopback: either end a
// loopback address (the kernel's tcp_twsk_unique). An agent that did not report it is taken as
// 0, so an unknown setting never hides a limit.
bool ReuseApplies(const v1::Hello& hello, const std::string& source_ip, const RunShape& shape) {
  std::optional<std::string> reuse = Sysctl(hello, kTwReuse);
  if (reuse == "1") return true;
  if (reuse != "2") return false;
  if (shape.all_targets_loopback) return true;
  absl::StatusOr<SocketAddress> source = SocketAddress::ParseIp(source_ip);
  return source.ok() && source->is_loopback();
}

v1::PortLimit LimitOf(const SourceFacts& facts) {
  uint64_t tuples = facts.ports * facts.destinations;
  if (tuples == 0) return v1::PORT_LIMIT_UNSPECIFIED;
  if (facts.close != ClosePolicy::kClientFin) return v1::PORT_LIMIT_NO_CLIENT_TIME_WAIT;
  if (facts.reuse_applies) return v1::PORT_LIMIT_LIFTED_BY_REUSE;
  if (facts.max_tw_buckets.has_value() && *facts.max_tw_buckets >= 0 &&
      static_cast<uint64_t>(*facts.max_tw_buckets) < tuples) {
    return v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS;
  }
  return v1::PORT_LIMIT_TIME_WAIT;
}

// Notes on the agent's settings: reuse that lifts the budget, reuse=2 that does not apply to
// these targets, a tcp_max_tw_buckets that caps TIME_WAIT below the ports.
void AddHostNotes(const ShardFacts& shard, const RunShape& shape,
                  const std::vector<const v1::SourceBudget*>& sources,
                  std::set<std::string>* notes) {
  const v1::Hello& hello = *shard.hello;
  std::string reuse = Sysctl(hello, kTwReuse).value_or("");
  for (const v1::SourceBudget* s : sources) {
    if (s->limit() == v1::PORT_LIMIT_LIFTED_BY_REUSE) {
      notes->insert(
          absl::StrCat("tcp_tw_reuse=", reuse, " on ", hello.host(),
                       ": new connections may take over a TIME_WAIT tuple older than 1 s (with TCP "
                       "timestamps), which lifts this budget",
                       reuse == "2" ? " (2 applies to loopback connections only; these are)" : ""));
    } else if (s->limit() == v1::PORT_LIMIT_TIME_WAIT && reuse == "2" &&
               shape.close == ClosePolicy::kClientFin) {
      notes->insert(absl::StrCat("tcp_tw_reuse=2 on ", hello.host(),
                                 " reuses TIME_WAIT tuples of loopback connections only; these "
                                 "are not, so TIME_WAIT binds (1 would lift it)"));
    } else if (s->limit() == v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS) {
      notes->insert(absl::StrFormat(
          "tcp_max_tw_buckets=%s on %s is below the %d TIME_WAIT sockets a source's %d ports x "
          "%d destination(s) would hold: past it the kernel destroys TIME_WAIT sockets at once "
          "(TCPTimeWaitOverflow), so the ports do not run out, and TIME_WAIT no longer guards "
          "new connections against an old one's late segments",
          Sysctl(hello, kMaxTwBuckets).value_or("?"), hello.host(), s->ports() * s->destinations(),
          s->ports(), s->destinations()));
    }
  }
}

void AddSpecNotes(const RunShape& shape, v1::TupleBudget* budget) {
  if (shape.close == ClosePolicy::kRst) {
    budget->add_notes(
        "close_policy rst: close() sends RST and nobody keeps a TIME_WAIT, so this "
        "budget does not bind (in-flight data may be lost)");
  } else if (shape.close == ClosePolicy::kServerFin) {
    budget->add_notes(
        "close_policy server-fin: the server closes first and keeps the TIME_WAIT; "
        "the clients' ports are free at once, the server's side carries the state");
  }
  if (shape.bind_reserves_port) {
    budget->add_notes(
        "bind mode bind: bind(ip, 0) reserves a port for every destination, so more "
        "destinations do not raise the budget; no-port lets each destination reuse it");
  }
}

std::string Rate(double rate) { return absl::StrFormat("%.0f", rate); }

// The summary when `binding` sources are asked for more than they sustain; the first runs out
// of ports after `soonest` seconds.
std::string Binding(const v1::RunSpec& spec, const RunShape& shape, const v1::TupleBudget& budget,
                    int binding, double soonest) {
  std::string head = absl::StrFormat(
      "%d of %d source IP(s) are asked for more than their ports x destinations / %.0f s of "
      "TIME_WAIT sustain (%s new connections/s in all, %s/s requested)",
      binding, budget.sources_size(), budget.time_wait_s(), Rate(budget.total_rate()),
      Rate(spec.rate()));
  if (shape.duration_s > 0 && soonest > shape.duration_s) {
    return absl::StrFormat(
        "%s; their ports would run out after about %.0f s, but this %.0f s run ends first. A "
        "longer run would hit the four-tuple limit.",
        head, soonest, shape.duration_s);
  }
  return absl::StrFormat(
      "The four-tuple limit binds: %s, so ports run out after about %.0f s (EADDRNOTAVAIL). "
      "More source IPs or destination ports lift it.",
      head, soonest);
}

// Whether the budget binds this run, in one sentence.
std::string Summary(const v1::RunSpec& spec, const RunShape& shape, const v1::TupleBudget& budget) {
  int n = budget.sources_size();
  int known = 0;
  int reuse = 0;
  int buckets = 0;
  int binding = 0;
  double soonest = std::numeric_limits<double>::infinity();
  for (const v1::SourceBudget& s : budget.sources()) {
    known += s.limit() != v1::PORT_LIMIT_UNSPECIFIED;
    reuse += s.limit() == v1::PORT_LIMIT_LIFTED_BY_REUSE;
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
  if (reuse == n) {
    return absl::StrCat(
        "tcp_tw_reuse lets new connections take over TIME_WAIT tuples toward "
        "these targets, so the tuple budget (",
        total, "/s) does not bind here.");
  }
  if (buckets > 0 && reuse + buckets == n) {
    return absl::StrCat(
        "tcp_max_tw_buckets caps TIME_WAIT below the ports: the kernel destroys "
        "TIME_WAIT sockets early (TCPTimeWaitOverflow) instead of running out of "
        "ports, so the tuple budget (",
        total, "/s) does not bind here.");
  }
  if (spec.rate() <= 0) {
    return absl::StrFormat(
        "%d source IP(s) can sustain %s new connections/s with TIME_WAIT at %.0f s; a "
        "closed-model run goes as fast as the target answers, so ports run out if it beats that.",
        n, total, budget.time_wait_s());
  }
  return absl::StrFormat(
      "The tuple budget (%s/s over %d source IP(s)) is above the requested %s/s: ports are not "
      "the limit for this run.",
      total, n, Rate(spec.rate()));
}

}  // namespace

v1::SourceBudget BudgetOfSource(const SourceFacts& facts, double requested_rate) {
  v1::SourceBudget s;
  uint64_t tuples = facts.ports * facts.destinations;
  s.set_ports(facts.ports);
  s.set_destinations(facts.destinations);
  s.set_budget_rate(facts.time_wait_s > 0 ? tuples / facts.time_wait_s : 0);
  s.set_requested_rate(requested_rate);
  s.set_limit(LimitOf(facts));
  // Ports in use grow at the requested rate until the first TIME_WAIT ends; past the budget
  // they are all taken before that, after tuples / rate seconds.
  if (s.limit() == v1::PORT_LIMIT_TIME_WAIT && requested_rate > s.budget_rate()) {
    s.set_exhaustion_after_s(tuples / requested_rate);
  }
  return s;
}

v1::TupleBudget ComputeTupleBudget(const v1::RunSpec& spec, std::span<const ShardFacts> shards) {
  RunShape shape = ShapeOf(spec);
  v1::TupleBudget budget;
  budget.set_time_wait_s(kTimeWaitSeconds);
  uint32_t destinations =
      shape.bind_reserves_port ? 1 : static_cast<uint32_t>(std::max(1, spec.targets_size()));
  std::set<std::string> notes;
  for (const ShardFacts& shard : shards) {
    const v1::Hello& hello = *shard.hello;
    std::vector<std::string> sources(shard.source_ips.begin(), shard.source_ips.end());
    if (sources.empty()) sources.push_back("auto");
    std::vector<const v1::SourceBudget*> added;
    for (const std::string& ip : sources) {
      SourceFacts facts{.ports = PortCount(hello),
                        .destinations = destinations,
                        .time_wait_s = kTimeWaitSeconds,
                        .close = shape.close,
                        .reuse_applies = ReuseApplies(hello, ip, shape),
                        .max_tw_buckets = SysctlInt(hello, kMaxTwBuckets)};
      v1::SourceBudget* s = budget.add_sources();
      *s = BudgetOfSource(facts, shard.rate / sources.size());
      s->set_agent(hello.name());
      s->set_ip(ip);
      budget.set_total_rate(budget.total_rate() + s->budget_rate());
      added.push_back(s);
    }
    AddHostNotes(shard, shape, added, &notes);
  }
  for (const std::string& note : notes) budget.add_notes(note);
  AddSpecNotes(shape, &budget);
  budget.set_summary(Summary(spec, shape, budget));
  return budget;
}

}  // namespace churnlab::analysis
