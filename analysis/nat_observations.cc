#include "analysis/nat_observations.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace churnlab::analysis {
namespace {

// A table this full counts as full: the kernel evicts (early_drop) only once it is at max.
constexpr double kFullFraction = 0.9;
// How long conntrack keeps a closed TCP flow (nf_conntrack_tcp_timeout_time_wait's default).
constexpr int kConntrackTimeWaitS = 120;

int64_t Counter(const google::protobuf::Map<std::string, int64_t>& counters, const char* key) {
  auto it = counters.find(key);
  return it == counters.end() ? 0 : it->second;
}

// One host's table: `who` names it ("agent a1's host").
void ObserveTable(const std::string& who, const v1::ConntrackTable& table,
                  const google::protobuf::Map<std::string, int64_t>& counters, double rate,
                  std::vector<std::string>* out) {
  const int64_t early = Counter(counters, "ConntrackEarlyDrop");
  const int64_t insert_failed = Counter(counters, "ConntrackInsertFailed");
  // A failed insert drops its packet too: the drops beyond those are the table's want of room.
  const int64_t drop = std::max<int64_t>(0, Counter(counters, "ConntrackDrop") - insert_failed);
  const bool full = table.max() > 0 && table.peak_count() >= kFullFraction * table.max();
  if (full || drop > 0 || early > 0) {
    std::string sentence =
        absl::StrFormat("The conntrack table on %s was full: %d of %d entries at most", who,
                        table.peak_count(), table.max());
    if (drop > 0) absl::StrAppend(&sentence, "; it dropped ", drop, " packets of new flows");
    if (early > 0) absl::StrAppend(&sentence, "; it evicted ", early, " entries early");
    absl::StrAppendFormat(&sentence,
                          ". Every connection through a NAT or a stateful firewall holds an "
                          "entry while open and %d s after it closes",
                          kConntrackTimeWaitS);
    if (rate > 0) {
      absl::StrAppendFormat(&sentence, ", so %.0f new connections/s need about %.0f entries", rate,
                            rate * kConntrackTimeWaitS);
    }
    absl::StrAppend(&sentence,
                    "; raise net.netfilter.nf_conntrack_max (the node's: one table size for the "
                    "whole kernel) or shorten nf_conntrack_tcp_timeout_time_wait.");
    out->push_back(std::move(sentence));
  }
  if (insert_failed > 0) {
    out->push_back(absl::StrFormat(
        "conntrack on %s could not insert %d new flows: each clashed with a flow it already "
        "tracked. Behind a NAT (SNAT or MASQUERADE, a node's egress) this is the NAT finding no "
        "free port toward the destination: SNAT port exhaustion. The kernel drops those SYNs, "
        "which the agents see as connect timeouts.",
        who, insert_failed));
  }
}

// The agents' source addresses; empty when any is chosen by the kernel (then a peer cannot be
// told from an agent).
std::set<std::string> AgentSources(const v1::RunReport& report) {
  std::set<std::string> sources;
  for (const v1::AgentReport& agent : report.agents()) {
    for (const v1::SourceReport& s : agent.sources()) {
      if (s.ip() == "auto" || s.ip() == "0.0.0.0" || s.ip() == "::") return {};
      sources.insert(s.ip());
    }
  }
  return sources;
}

void ObserveNat(const v1::RunReport& report, std::vector<std::string>* out) {
  std::set<std::string> sources = AgentSources(report);
  if (sources.empty()) return;
  std::set<std::string> foreign;
  bool from_agents = false;
  for (const v1::ObserverReport& o : report.observers()) {
    for (const v1::ListenReport& l : o.listen()) {
      for (const std::string& ip : l.peer_ips()) {
        (sources.count(ip) ? from_agents : foreign.insert(ip).second);
      }
    }
  }
  if (foreign.empty() || from_agents) return;
  out->push_back(absl::StrFormat(
      "The target saw this run's connections come from %s, none of the agents' %d source "
      "addresses: a NAT on the way (a node's SNAT, a masquerading router) rewrote them. The "
      "four-tuple budget is then the NAT's: its %d address%s times the ports it maps toward each "
      "destination, shared by every agent behind it and held for conntrack's %d s after each "
      "close; the tuple budget above counts the agents' own sources and overstates it.",
      absl::StrJoin(foreign, ", "), sources.size(), foreign.size(), foreign.size() == 1 ? "" : "es",
      kConntrackTimeWaitS));
}

}  // namespace

void ObserveConntrackAndNat(const v1::RunReport& report, std::vector<std::string>* out) {
  const double rate =
      report.requested_rate() > 0 ? report.requested_rate() : report.achieved_rate();
  std::set<std::string> hosts;  // agents on one host share its table: one sentence per host
  for (const v1::AgentReport& agent : report.agents()) {
    if (!agent.has_conntrack() || !hosts.insert(agent.host()).second) continue;
    ObserveTable(absl::StrCat("agent ", agent.name(), "'s host"), agent.conntrack(),
                 agent.kernel_counters(), rate, out);
  }
  for (const v1::ObserverReport& o : report.observers()) {
    if (!o.has_conntrack()) continue;
    ObserveTable(absl::StrCat("the target's host (", o.name(), ")"), o.conntrack(),
                 o.kernel_counters(), rate, out);
  }
  ObserveNat(report, out);
}

}  // namespace churnlab::analysis
