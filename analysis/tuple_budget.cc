#include "analysis/tuple_budget.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "analysis/tuple_budget_summary.h"

namespace churnlab::analysis {
namespace {

constexpr char kTwReuse[] = "net.ipv4.tcp_tw_reuse";
constexpr char kTwReuseDelay[] = "net.ipv4.tcp_tw_reuse_delay";
constexpr char kTimestamps[] = "net.ipv4.tcp_timestamps";
constexpr char kMaxTwBuckets[] = "net.ipv4.tcp_max_tw_buckets";

// Whether a source's connections are loopback ones for tcp_tw_reuse=2: either end a loopback
// address (the kernel's tcp_twsk_unique).
// `source` is null where the kernel picks the address (a loopback target then means it picks a
// loopback one).
bool Loopback(const SocketAddress* source, const RunShape& shape) {
  return shape.all_targets_loopback || (source != nullptr && source->is_loopback());
}

// Settings a hello did not report read as 0: an unknown setting never hides a limit.
int SysctlOrZero(const v1::Hello& hello, const char* key) {
  return static_cast<int>(SysctlInt(hello, key).value_or(0));
}

// tcp_tw_reuse_delay in seconds where the kernel has it (ms), else its fixed one second.
double ReuseDelaySeconds(const v1::Hello& hello) {
  std::optional<int64_t> ms = SysctlInt(hello, kTwReuseDelay);
  return ms.has_value() && *ms > 0 ? *ms / 1000.0 : kTwReuseDelaySeconds;
}

// tcp_tw_reuse acts where connect() picks the port (__inet_hash_connect), not on a port bind()
// took (held by its TIME_WAIT) or the engine bound (taken over by timestamps alone).
double ReuseDelayOf(const v1::Hello& hello, bool loopback, const RunShape& shape) {
  if (BindReservesPort(shape.bind) || shape.bind == BindMode::kEngine) return 0;
  return ReuseDelay(SysctlOrZero(hello, kTwReuse), SysctlOrZero(hello, kTimestamps), loopback,
                    ReuseDelaySeconds(hello));
}

v1::PortLimit LimitOf(const SourceFacts& facts) {
  uint64_t tuples = facts.ports * facts.destinations;
  if (tuples == 0) return v1::PORT_LIMIT_UNSPECIFIED;
  if (facts.close != ClosePolicy::kClientFin) return v1::PORT_LIMIT_NO_CLIENT_TIME_WAIT;
  if (facts.taken_over) return v1::PORT_LIMIT_TAKEN_OVER;
  if (facts.reuse_delay_s > 0) return v1::PORT_LIMIT_TW_REUSE;
  return v1::PORT_LIMIT_TIME_WAIT;
}

// Notes on the ports connect() could not give when the run started: each source's own toward
// the targets, and bind()'s anywhere on the host (or, where the agent could not ask the kernel
// which were bind()'s, every port held there, as an upper bound).
void AddPortsAtStartNotes(const ShardFacts& shard, std::set<std::string>* notes) {
  const v1::Hello& hello = *shard.hello;
  const bool bind_known =
      shard.range_at_start.has_value() && shard.range_at_start->bind_taken_known();
  const bool bind_took = bind_known && shard.range_at_start->bind_taken() > 0;
  for (const auto& [ip, held] : shard.taken_at_start) {
    notes->insert(absl::StrFormat(
        "%s (%s) already held %d ports toward the targets when the run started (an earlier "
        "run's TIME_WAIT)%s: the budget counts the %d left",
        ip, hello.name(), held, bind_took ? ", and bind() took others on its host (below)" : "",
        PortCount(hello) - std::min(UnusableAtStart(shard, ip), PortCount(hello))));
  }
  if (bind_took) {
    const v1::PortsAtStart& at_start = *shard.range_at_start;
    notes->insert(absl::StrFormat(
        "when the run started, bind() had taken %d ports of %s's range (any address or program, "
        "%d of them listeners'; the kernel's own port choice was asked): connect() skips them "
        "from every source IP and toward every destination, so the budget counts them out; the "
        "other %d ports sockets held there were connect()'s, which take only their own "
        "four-tuples",
        at_start.bind_taken(), hello.host(), at_start.listening(),
        at_start.in_use() - at_start.bind_taken()));
  } else if (!bind_known && shard.range_at_start.has_value() &&
             shard.range_at_start->in_use() > 0) {
    uint64_t own = 0;
    for (const auto& [ip, held] : shard.taken_at_start) own += held;
    uint64_t elsewhere =
        shard.range_at_start->in_use() - std::min(own, shard.range_at_start->in_use());
    if (elsewhere >= std::max<uint64_t>(1, PortCount(hello) / 100)) {
      notes->insert(absl::StrFormat(
          "when the run started, %d ports of %s's range were held by other sockets on the host "
          "(other addresses or programs; %d by listeners): connect() skips every one that bind() "
          "took, from any source IP, so the budget is at most that much lower (which were bind()'s "
          "is unknown: the agent could not ask the kernel)",
          elsewhere, hello.host(), shard.range_at_start->listening()));
    }
  }
}

// One (agent, source IP) of a run.
struct SourceEntry {
  const ShardFacts* shard;
  std::string ip;     // "auto" where the kernel picks it
  bool loopback;      // its connections are loopback ones (Loopback)
  std::string space;  // NamespaceOf its agent
  SourceFacts facts;
  double rate;  // its share, new connections/s
};

// Bind mode engine where TIME_WAIT still binds a source: why its TIME_WAITs are not, or may
// not be, taken over (BoundConnectTakesOver).
void AddEngineHostNote(const v1::Hello& hello, const RunShape& shape, const v1::SourceBudget& s,
                       std::set<std::string>* notes) {
  if (s.limit() != v1::PORT_LIMIT_TIME_WAIT || shape.close != ClosePolicy::kClientFin) return;
  notes->insert(
      SysctlOrZero(hello, kTimestamps) == 0
          ? absl::StrCat("tcp_timestamps=", Sysctl(hello, kTimestamps).value_or("(not reported)"),
                         " on ", hello.host(),
                         ": bind mode engine can take no TIME_WAIT over, so each port waits it "
                         "out (tcp_tw_reuse does not apply to a port the caller bound)")
          : absl::StrCat("bind mode engine from ", hello.host(),
                         " toward another host: a TIME_WAIT is taken over where the server "
                         "answers with TCP timestamps (Linux and most servers do; Windows by "
                         "default not), which only the run shows (TWRecycled in its kernel "
                         "counters), so the budget counts the whole TIME_WAIT"));
}

// Notes on the agent's settings: reserved ports, reuse that shortens the hold, reuse that does
// not apply (2 on connections that are not loopback ones, or timestamps off). `entries` are the
// shard's sources, `sources` their budgets.
void AddHostNotes(const ShardFacts& shard, const RunShape& shape,
                  std::span<const SourceEntry> entries,
                  std::span<const v1::SourceBudget* const> sources, std::set<std::string>* notes) {
  const v1::Hello& hello = *shard.hello;
  const v1::PortRange& range = hello.port_range();
  if (uint64_t reserved = hello.reserved_ports(); reserved > 0 && PortCount(hello) > 0) {
    notes->insert(absl::StrFormat(
        "%d of %s's %d ports are in net.ipv4.ip_local_reserved_ports: connect() never picks "
        "them, so the budget counts %d",
        reserved, hello.host(), range.high() - range.low() + 1, PortCount(hello)));
  }
  AddPortsAtStartNotes(shard, notes);
  std::string reuse = Sysctl(hello, kTwReuse).value_or("");
  for (size_t i = 0; i < sources.size(); ++i) {
    const v1::SourceBudget* s = sources[i];
    if (shape.bind == BindMode::kEngine) {
      AddEngineHostNote(hello, shape, *s, notes);
    } else if (s->limit() == v1::PORT_LIMIT_TW_REUSE) {
      notes->insert(absl::StrFormat(
          "tcp_tw_reuse=%s on %s%s: a new connection may take over a TIME_WAIT tuple %g s "
          "(tcp_tw_reuse_delay) after its last TCP timestamp, so each source sustains ports x "
          "destinations / %g s instead of / %.0f s; it does not remove the limit",
          reuse, hello.host(), reuse == "2" ? " (2: loopback connections only; these are)" : "",
          s->hold_s(), s->hold_s(), kTimeWaitSeconds));
    } else if (s->limit() == v1::PORT_LIMIT_TIME_WAIT && shape.close == ClosePolicy::kClientFin &&
               SysctlOrZero(hello, kTimestamps) == 0 &&
               ReuseDelay(SysctlOrZero(hello, kTwReuse), 1, entries[i].loopback, 1) > 0) {
      notes->insert(absl::StrCat(
          "tcp_tw_reuse=", reuse, " on ", hello.host(),
          ", but tcp_timestamps=", Sysctl(hello, kTimestamps).value_or("(not reported)"),
          ": the kernel takes over a TIME_WAIT tuple only by its TCP timestamp, so TIME_WAIT "
          "binds in full"));
    } else if (s->limit() == v1::PORT_LIMIT_TIME_WAIT && reuse == "2" &&
               shape.close == ClosePolicy::kClientFin) {
      notes->insert(absl::StrCat("tcp_tw_reuse=2 on ", hello.host(),
                                 " reuses TIME_WAIT tuples of loopback connections only; these "
                                 "are not, so TIME_WAIT binds (1 would shorten it to the reuse "
                                 "delay)"));
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
  if (shape.bind == BindMode::kBind) {
    budget->add_notes(
        "bind mode bind: bind(ip, 0) reserves a port for every destination, so more "
        "destinations do not raise the budget; no-port lets each destination reuse it");
  } else if (shape.bind == BindMode::kBindAny) {
    budget->add_notes(
        "bind mode bind-any: bind(0.0.0.0, 0), like IPAddress.Any:0, reserves a port on every "
        "address and for every destination, so neither more source IPs nor more destinations "
        "raise the budget, and tcp_tw_reuse does not shorten it; no-port with source IPs does");
  } else if (shape.bind == BindMode::kEngine) {
    budget->add_notes(
        "bind mode engine: the engine picks each source port per destination, so connect() has "
        "no port to search for. A connection with TCP timestamps leaves a TIME_WAIT that the "
        "engine's next connect() from that port takes over once its FIN is acknowledged (the "
        "kernel allows it for a port its caller bound, whatever tcp_tw_reuse says; TWRecycled "
        "counts it); the engine waits a retransmission timeout for that, 0.2 s or more, so "
        "each source sustains ports x destinations / 0.2 s. Without timestamps the port waits "
        "its TIME_WAIT out. While it holds them, its ports are skipped by other programs' "
        "connect() on the host");
  }
}

// Which kernel tables a hello's sources share: ports, TIME_WAIT and tcp_max_tw_buckets are per
// network namespace of a kernel (its kernel_id); an agent that did not say is one of its own.
std::string NamespaceOf(const v1::Hello& hello) {
  return hello.kernel_id().empty() ? absl::StrCat("agent ", hello.name()) : hello.kernel_id();
}

// A source IP within one namespace: the agents that offer it and their rates summed.
struct SharedIp {
  std::vector<std::string> agents;
  double rate = 0;
};

std::map<std::pair<std::string, std::string>, SharedIp> SharedIps(
    const std::vector<SourceEntry>& entries) {
  std::map<std::pair<std::string, std::string>, SharedIp> out;
  for (const SourceEntry& e : entries) {
    SharedIp& same = out[{e.space, e.ip}];
    same.agents.push_back(e.shard->hello->name());
    same.rate += e.rate;
  }
  return out;
}

// tcp_max_tw_buckets caps every TIME_WAIT of a namespace: all its sources, the server side and
// other programs. TIME_WAIT there levels off at what the namespace held when the run started
// (its agents' census) plus the run's total rate x TIME_WAIT (one per four-tuple at most); a cap
// below that is reached after (cap - held) / rate seconds, and past it the kernel destroys
// TIME_WAIT sockets at once (TCPTimeWaitOverflow), so a source whose ports would run out later
// than that (or never) does not. The closed model has no rate: there the cap is held against
// the namespace's four-tuples.
void ApplyTimeWaitCaps(const std::vector<SourceEntry>& entries,
                       const std::vector<v1::SourceBudget*>& budgets,
                       std::set<std::string>* notes) {
  struct Space {
    std::optional<int64_t> cap;
    double rate = 0;
    uint64_t tuples = 0;
    std::set<std::string> ips;  // counted once each, however many agents offer them
    std::set<std::string> hosts;
    uint64_t held = 0;  // TIME_WAIT in the namespace at the start, as its agents counted it
  };
  std::map<std::string, Space> spaces;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!PortLimitBinds(budgets[i]->limit())) continue;
    Space& space = spaces[entries[i].space];
    space.cap = SysctlInt(*entries[i].shard->hello, kMaxTwBuckets);
    space.rate += entries[i].rate;
    if (space.ips.insert(entries[i].ip).second) {
      space.tuples += budgets[i]->ports() * budgets[i]->destinations();
    }
    space.hosts.insert(entries[i].shard->hello->host());
    if (const auto& at_start = entries[i].shard->range_at_start) {
      space.held = std::max(space.held, at_start->time_wait());
    }
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    v1::SourceBudget* s = budgets[i];
    auto it = spaces.find(entries[i].space);
    if (!PortLimitBinds(s->limit()) || it == spaces.end() || !it->second.cap ||
        *it->second.cap < 0) {
      continue;
    }
    const Space& space = it->second;
    double cap = static_cast<double>(*space.cap);
    double tuples = static_cast<double>(space.tuples);
    const double held = static_cast<double>(space.held);
    double level =
        held + (space.rate > 0 ? std::min(space.rate * kTimeWaitSeconds, tuples) : tuples);
    if (cap >= level) continue;  // never reached
    double reached = space.rate > 0 ? std::max(0.0, cap - held) / space.rate : 0;
    double runs_out = s->exhaustion_after_s() > 0 ? s->exhaustion_after_s()
                                                  : std::numeric_limits<double>::infinity();
    if (reached >= runs_out) continue;  // its ports run out first
    s->set_limit(v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS);
    s->set_exhaustion_after_s(0);
    notes->insert(absl::StrFormat(
        "tcp_max_tw_buckets=%d caps every TIME_WAIT of the network namespace of %s (all its "
        "sources, the server side, other programs%s): %s, before any of its sources runs out of "
        "ports, so past it the kernel destroys TIME_WAIT sockets at once (TCPTimeWaitOverflow): "
        "no EADDRNOTAVAIL, and TIME_WAIT no longer guards new connections against an old one's "
        "late segments",
        *space.cap, absl::StrJoin(space.hosts, ", "),
        space.held > 0 ? absl::StrFormat("; %d were in TIME_WAIT when the run started", space.held)
                       : "",
        space.rate > 0
            ? absl::StrFormat("at %.0f new connections/s in all it is reached after "
                              "about %s s",
                              space.rate, ApproxSeconds(reached))
            : absl::StrFormat("it is below the namespace's %d four-tuples", space.tuples)));
  }
}

}  // namespace

std::string ApproxSeconds(double seconds) {
  return seconds >= 10 ? absl::StrFormat("%.0f", seconds) : absl::StrFormat("%.2g", seconds);
}

std::string PlanSeconds(double seconds) {
  return seconds >= 0.1 ? absl::StrFormat("%.1f", seconds) : absl::StrFormat("%.2g", seconds);
}

bool PortLimitBinds(v1::PortLimit limit) {
  return limit == v1::PORT_LIMIT_TIME_WAIT || limit == v1::PORT_LIMIT_TW_REUSE ||
         limit == v1::PORT_LIMIT_TAKEN_OVER;
}

const char* HoldName(v1::PortLimit limit) {
  switch (limit) {
    case v1::PORT_LIMIT_TW_REUSE:
      return "tcp_tw_reuse_delay";
    case v1::PORT_LIMIT_TAKEN_OVER:
      return "bind mode engine's wait to take a TIME_WAIT over";
    default:
      return "TIME_WAIT";
  }
}

v1::SourceBudget BudgetOfSource(const SourceFacts& facts, double requested_rate) {
  v1::SourceBudget s;
  uint64_t tuples = facts.ports * facts.destinations;
  s.set_ports(facts.ports);
  s.set_destinations(facts.destinations);
  s.set_limit(LimitOf(facts));
  // Reuse never holds a tuple longer than TIME_WAIT would.
  s.set_hold_s(
      s.limit() == v1::PORT_LIMIT_TW_REUSE     ? std::min(facts.reuse_delay_s, facts.time_wait_s)
      : s.limit() == v1::PORT_LIMIT_TAKEN_OVER ? std::min(kTakeoverWaitSeconds, facts.time_wait_s)
                                               : facts.time_wait_s);
  s.set_budget_rate(s.hold_s() > 0 ? tuples / s.hold_s() : 0);
  s.set_requested_rate(requested_rate);
  // Ports in use grow at the requested rate until the first closed tuple is free again; past
  // the budget they are all taken before that, after tuples / rate seconds.
  if (PortLimitBinds(s.limit()) && requested_rate > s.budget_rate()) {
    s.set_exhaustion_after_s(tuples / requested_rate);
  }
  return s;
}

namespace {

// A budget entry per source of each shard ("auto" where the kernel picks it), its ports less
// those connect() could not give it when the run started.
std::vector<SourceEntry> EntriesOf(const v1::RunSpec& spec, const RunShape& shape,
                                   std::span<const ShardFacts> shards) {
  const uint32_t spec_destinations = static_cast<uint32_t>(std::max(1, spec.targets_size()));
  std::vector<SourceEntry> entries;
  for (const ShardFacts& shard : shards) {
    uint32_t destinations = BindReservesPort(shape.bind) ? 1
                            : shard.destinations > 0     ? shard.destinations
                                                         : spec_destinations;
    // Where the kernel picks the address, one entry "auto" (a null source).
    std::vector<const SocketAddress*> sources;
    for (const SocketAddress& ip : shard.sources) sources.push_back(&ip);
    if (sources.empty()) sources.push_back(nullptr);
    for (const SocketAddress* source : sources) {
      const v1::Hello& hello = *shard.hello;
      const std::string ip = source == nullptr ? "auto" : source->IpString();
      const uint64_t held = UnusableAtStart(shard, ip);
      const bool loopback = Loopback(source, shape);
      entries.push_back(SourceEntry{
          .shard = &shard,
          .ip = ip,
          .loopback = loopback,
          .space = NamespaceOf(hello),
          .facts = {.ports = PortCount(hello) - std::min(held, PortCount(hello)),
                    .destinations = destinations,
                    .time_wait_s = kTimeWaitSeconds,
                    .close = shape.close,
                    .reuse_delay_s = ReuseDelayOf(hello, loopback, shape),
                    .taken_over =
                        shape.bind == BindMode::kEngine &&
                        BoundConnectTakesOver(SysctlOrZero(hello, kTimestamps), loopback)},
          .rate = shard.rate / sources.size()});
    }
  }
  return entries;
}

}  // namespace

v1::TupleBudget ComputeTupleBudget(const v1::RunSpec& spec, std::span<const ShardFacts> shards) {
  return ComputeTupleBudget(spec, ShapeOf(spec), shards);
}

v1::TupleBudget ComputeTupleBudget(const v1::RunSpec& spec, const RunShape& shape,
                                   std::span<const ShardFacts> shards) {
  v1::TupleBudget budget;
  budget.set_time_wait_s(kTimeWaitSeconds);
  std::vector<SourceEntry> entries = EntriesOf(spec, shape, shards);
  std::set<std::string> notes;
  std::vector<v1::SourceBudget*> added;
  std::map<std::pair<std::string, std::string>, SharedIp> shared = SharedIps(entries);
  for (const SourceEntry& e : entries) {
    const SharedIp& same = shared.at({e.space, e.ip});
    // An IP that two agents of one namespace offer has its ports once: they share its budget,
    // and the rate of both draws on it.
    v1::SourceBudget* s = budget.add_sources();
    *s = BudgetOfSource(e.facts, same.rate);
    s->set_budget_rate(s->budget_rate() / same.agents.size());
    s->set_requested_rate(e.rate);
    s->set_agent(e.shard->hello->name());
    s->set_ip(e.ip);
    budget.set_total_rate(budget.total_rate() + s->budget_rate());
    added.push_back(s);
    if (same.agents.size() > 1 && e.ip != "auto") {
      notes.insert(absl::StrFormat(
          "source IP %s is offered by agents %s on one kernel and network namespace: they share "
          "its ports and TIME_WAIT, so it counts once in the budget",
          e.ip, absl::StrJoin(same.agents, ", ")));
    }
  }
  for (size_t first = 0; first < entries.size();) {
    size_t end = first;
    while (end < entries.size() && entries[end].shard == entries[first].shard) ++end;
    AddHostNotes(*entries[first].shard, shape,
                 std::span<const SourceEntry>(entries).subspan(first, end - first),
                 std::span<const v1::SourceBudget* const>(added).subspan(first, end - first),
                 &notes);
    first = end;
  }
  ApplyTimeWaitCaps(entries, added, &notes);
  for (const std::string& note : notes) budget.add_notes(note);
  AddSpecNotes(shape, &budget);
  budget.set_summary(TupleBudgetSummary(spec, shape, budget));
  return budget;
}

}  // namespace churnlab::analysis
