#include "coordinator/scheduler.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/net_address.h"

namespace churnlab {
namespace {

// The address family of the spec's targets (validation keeps them to one); AF_UNSPEC when
// none parses.
int TargetFamily(const v1::RunSpec& spec) {
  for (const std::string& text : spec.targets()) {
    absl::StatusOr<SocketAddress> target = SocketAddress::ParseIpPort(text);
    if (target.ok()) return target->family();
  }
  return AF_UNSPEC;
}

bool OfFamily(const std::string& ip, int family) {
  if (family == AF_UNSPEC) return true;
  absl::StatusOr<SocketAddress> address = SocketAddress::ParseIp(ip);
  return address.ok() && address->family() == family;
}

// The agent's source IPs of the targets' family, less those the spec excludes: a dual-stack
// agent offering 127.0.0.1 and ::1 takes part in IPv4 runs with the first only.
std::vector<std::string> Offered(const v1::RunSpec& spec, const v1::Hello& hello) {
  int family = TargetFamily(spec);
  std::vector<std::string> out;
  for (const std::string& ip : hello.source_ips()) {
    if (OfFamily(ip, family) &&
        std::find(spec.exclude_source_ips().begin(), spec.exclude_source_ips().end(), ip) ==
            spec.exclude_source_ips().end()) {
      out.push_back(ip);
    }
  }
  return out;
}

// Empty when `agent` may be given the spec; otherwise why not.
std::string Ineligibility(const v1::RunSpec& spec, const AgentCandidate& agent) {
  if (agent.busy) return "busy with another run";
  std::vector<Cidr> allowed;
  for (const std::string& text : agent.hello.allow_targets()) {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(text);
    if (cidr.ok()) allowed.push_back(*cidr);
  }
  std::vector<SocketAddress> targets;
  for (const std::string& text : spec.targets()) {
    absl::StatusOr<SocketAddress> t = SocketAddress::ParseIpPort(text);
    if (t.ok()) targets.push_back(*t);
  }
  absl::Status allowed_status = CheckTargetsAllowed(targets, allowed);
  if (!allowed_status.ok()) return absl::StrCat("targets: ", allowed_status.message());
  if (spec.bind_mode() != "none" && Offered(spec, agent.hello).empty()) {
    int family = TargetFamily(spec);
    bool any_of_family =
        std::any_of(agent.hello.source_ips().begin(), agent.hello.source_ips().end(),
                    [&](const std::string& ip) { return OfFamily(ip, family); });
    if (!any_of_family && agent.hello.source_ips_size() > 0) {
      return absl::StrCat("offers no source IP of the targets' family (",
                          family == AF_INET6 ? "IPv6" : "IPv4", ")");
    }
    return "offers no source IP (that the spec does not exclude)";
  }
  return "";
}

absl::StatusOr<std::vector<const AgentCandidate*>> ChooseAgents(
    const v1::RunSpec& spec, const std::vector<AgentCandidate>& candidates) {
  std::vector<const AgentCandidate*> chosen;
  if (spec.agent_names_size() > 0) {
    for (const std::string& name : spec.agent_names()) {
      auto it = std::find_if(candidates.begin(), candidates.end(),
                             [&](const AgentCandidate& c) { return c.hello.name() == name; });
      if (it == candidates.end()) {
        return absl::FailedPreconditionError(
            absl::StrCat("agent_names: no agent '", name, "' is connected"));
      }
      std::string why = Ineligibility(spec, *it);
      if (!why.empty()) {
        return absl::FailedPreconditionError(absl::StrCat("agent ", name, ": ", why));
      }
      chosen.push_back(&*it);
    }
    return chosen;
  }
  std::vector<std::string> reasons;
  for (const AgentCandidate& c : candidates) {
    std::string why = Ineligibility(spec, c);
    if (why.empty()) {
      chosen.push_back(&c);
    } else {
      reasons.push_back(absl::StrCat(c.hello.name(), ": ", why));
    }
  }
  std::sort(chosen.begin(), chosen.end(), [](const AgentCandidate* a, const AgentCandidate* b) {
    return a->hello.name() < b->hello.name();
  });
  if (spec.source_ips_size() > 0) {
    // Only agents that offer one of the requested addresses take part.
    std::set<std::string> wanted(spec.source_ips().begin(), spec.source_ips().end());
    std::erase_if(chosen, [&](const AgentCandidate* c) {
      return std::none_of(c->hello.source_ips().begin(), c->hello.source_ips().end(),
                          [&](const std::string& ip) { return wanted.count(ip) > 0; });
    });
    if (chosen.empty() && reasons.size() < candidates.size()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "source_ips: no eligible agent offers any of ", absl::StrJoin(spec.source_ips(), ",")));
    }
  }
  if (chosen.empty()) {
    return absl::FailedPreconditionError(
        candidates.empty()
            ? "no agent is connected"
            : absl::StrCat("no eligible agent (", absl::StrJoin(reasons, "; "), ")"));
  }
  if (spec.agents() > 0) {
    if (static_cast<size_t>(spec.agents()) > chosen.size()) {
      return absl::FailedPreconditionError(absl::StrCat("agents: the spec asks for ", spec.agents(),
                                                        ", only ", chosen.size(), " eligible"));
    }
    chosen.resize(spec.agents());
  }
  return chosen;
}

absl::StatusOr<std::vector<std::string>> ChooseSources(const v1::RunSpec& spec,
                                                       const v1::Hello& hello) {
  std::vector<std::string> sources;
  if (spec.bind_mode() == "none") return sources;
  std::vector<std::string> offered = Offered(spec, hello);
  if (spec.source_ips_size() > 0) {
    for (const std::string& ip : offered) {
      if (std::find(spec.source_ips().begin(), spec.source_ips().end(), ip) !=
          spec.source_ips().end()) {
        sources.push_back(ip);
      }
    }
    return sources;
  }
  sources = offered;
  if (spec.source_ips_per_agent() > 0) {
    if (static_cast<size_t>(spec.source_ips_per_agent()) > sources.size()) {
      return absl::FailedPreconditionError(
          absl::StrCat("source_ips_per_agent: agent ", hello.name(), " offers ", sources.size(),
                       " source IP(s), the spec asks for ", spec.source_ips_per_agent()));
    }
    sources.resize(spec.source_ips_per_agent());
  }
  return sources;
}

}  // namespace

std::vector<int64_t> SplitEvenly(int64_t total, int parts) {
  std::vector<int64_t> out(parts, total / parts);
  for (int64_t i = 0; i < total % parts; ++i) ++out[i];
  return out;
}

std::vector<double> SplitRate(double rate, int parts) {
  double whole = std::floor(rate);
  std::vector<int64_t> shares = SplitEvenly(static_cast<int64_t>(whole), parts);
  std::vector<double> out(shares.begin(), shares.end());
  out[0] += rate - whole;
  return out;
}

absl::StatusOr<std::vector<Assignment>> PlanRun(const v1::RunSpec& spec,
                                                const std::vector<AgentCandidate>& candidates) {
  absl::StatusOr<std::vector<const AgentCandidate*>> agents = ChooseAgents(spec, candidates);
  if (!agents.ok()) return agents.status();
  std::vector<Assignment> plan;
  std::set<std::string> covered;
  for (const AgentCandidate* agent : *agents) {
    absl::StatusOr<std::vector<std::string>> sources = ChooseSources(spec, agent->hello);
    if (!sources.ok()) return sources.status();
    covered.insert(sources->begin(), sources->end());
    plan.push_back(Assignment{agent->hello.name(), *sources});
  }
  for (const std::string& ip : spec.source_ips()) {
    if (covered.count(ip) == 0) {
      return absl::FailedPreconditionError(absl::StrCat("source_ips: no chosen agent offers ", ip));
    }
  }
  int n = static_cast<int>(plan.size());
  if (spec.rate() > 0) {
    if (spec.max_in_flight() < n) {
      return absl::FailedPreconditionError(absl::StrCat("max_in_flight: ", spec.max_in_flight(),
                                                        " cannot be shared by ", n, " agents"));
    }
    if (spec.rate() < n) {
      return absl::FailedPreconditionError(absl::StrCat("rate: ", spec.rate(),
                                                        " conn/s is less than one per agent for ",
                                                        n, " agents; ask for fewer agents"));
    }
    std::vector<double> rates = SplitRate(spec.rate(), n);
    std::vector<int64_t> in_flight = SplitEvenly(spec.max_in_flight(), n);
    for (int i = 0; i < n; ++i) {
      plan[i].rate = rates[i];
      plan[i].max_in_flight = in_flight[i];
    }
  } else {
    if (spec.concurrency() < n) {
      return absl::FailedPreconditionError(
          absl::StrCat("concurrency: ", spec.concurrency(), " cannot be shared by ", n, " agents"));
    }
    std::vector<int64_t> shares = SplitEvenly(spec.concurrency(), n);
    for (int i = 0; i < n; ++i) plan[i].concurrency = shares[i];
  }
  return plan;
}

bool ObserverServesTargets(const v1::Hello& observer, const v1::RunSpec& spec) {
  for (const std::string& text : observer.listen_addresses()) {
    absl::StatusOr<SocketAddress> listen = SocketAddress::ParseIpPort(text);
    if (!listen.ok()) continue;
    for (const std::string& target_text : spec.targets()) {
      absl::StatusOr<SocketAddress> target = SocketAddress::ParseIpPort(target_text);
      if (!target.ok() || target->port() != listen->port()) continue;
      if (*target == *listen) return true;
      if (listen->is_unspecified() && target->family() == listen->family()) return true;
    }
  }
  return false;
}

}  // namespace churnlab
