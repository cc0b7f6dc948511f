#include "coordinator/scheduler.h"

#include <sys/socket.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "analysis/preflight.h"
#include "analysis/run_sources.h"
#include "common/net_address.h"
#include "common/status_macros.h"
#include "common/target_names.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

// What scheduling needs of the spec, computed once per PlanRun: every per-agent step is then a
// hash lookup, so planning costs the sum of its inputs, not their product (100k offered
// addresses against 100k exclusions took 20 s under the coordinator's lock with linear finds).
struct SpecFacts {
  SpecFacts(const v1::RunSpec& spec, const analysis::RunShape& shape)
      : targets(shape.targets),
        sources(shape),
        wanted(shape.wanted_sources.begin(), shape.wanted_sources.end()) {}
  const std::vector<SocketAddress>& targets;  // the IP targets, parsed once (RunShape)
  analysis::RunSources sources;               // which of an agent's source IPs the spec may use
  absl::flat_hash_set<SocketAddress> wanted;  // spec.source_ips
  // Whether the targets fit an allow-list, by the list's text: agents mostly share one.
  mutable std::unordered_map<std::string, std::string> allow_verdicts;
};

// "" when every target is inside the agent's allow-list; otherwise why not. Its blocks are
// checked here; a host name in it is resolved by the agent when the shard comes, so a list with
// names leaves the IP targets outside its blocks for the agent to judge.
std::string AllowVerdict(const SpecFacts& facts, const v1::Hello& hello) {
  std::string key = absl::StrJoin(hello.allow_targets(), ",");
  auto cached = facts.allow_verdicts.find(key);
  if (cached != facts.allow_verdicts.end()) return cached->second;
  std::vector<Cidr> allowed;
  bool names = false;
  for (const std::string& text : hello.allow_targets()) {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(text);
    if (cidr.ok()) allowed.push_back(*cidr);
    names = names || !cidr.ok();
  }
  absl::Status status = names ? absl::OkStatus() : CheckTargetsAllowed(facts.targets, allowed);
  std::string verdict = status.ok() ? "" : absl::StrCat("targets: ", status.message());
  facts.allow_verdicts.emplace(std::move(key), verdict);
  return verdict;
}

// Empty when `agent` may be given the spec; otherwise why not.
std::string Ineligibility(const v1::RunSpec& spec, const SpecFacts& facts,
                          const AgentCandidate& agent) {
  if (agent.busy) return "busy with another run";
  std::string not_allowed = AllowVerdict(facts, agent.hello);
  if (!not_allowed.empty()) return not_allowed;
  return BindsSourceIps(spec.bind_mode()) ? facts.sources.WhyNone(agent.sources) : "";
}

absl::StatusOr<std::vector<const AgentCandidate*>> ChooseAgents(
    const v1::RunSpec& spec, const SpecFacts& facts,
    const std::vector<AgentCandidate>& candidates) {
  std::vector<const AgentCandidate*> chosen;
  if (spec.agent_names_size() > 0) {
    std::unordered_map<std::string, const AgentCandidate*> by_name;
    for (const AgentCandidate& c : candidates) by_name.emplace(c.hello.name(), &c);
    for (const std::string& name : spec.agent_names()) {
      auto it = by_name.find(name);
      if (it == by_name.end()) {
        return absl::FailedPreconditionError(
            absl::StrCat("agent_names: no agent '", name, "' is connected"));
      }
      std::string why = Ineligibility(spec, facts, *it->second);
      if (!why.empty()) {
        return absl::FailedPreconditionError(absl::StrCat("agent ", name, ": ", why));
      }
      chosen.push_back(it->second);
    }
    return chosen;
  }
  std::vector<std::string> reasons;
  for (const AgentCandidate& c : candidates) {
    std::string why = Ineligibility(spec, facts, c);
    if (why.empty()) {
      chosen.push_back(&c);
    } else {
      reasons.push_back(absl::StrCat(c.hello.name(), ": ", why));
    }
  }
  std::sort(chosen.begin(), chosen.end(), [](const AgentCandidate* a, const AgentCandidate* b) {
    return a->hello.name() < b->hello.name();
  });
  if (!facts.wanted.empty()) {
    // Only agents that offer one of the requested addresses take part.
    std::erase_if(chosen, [&](const AgentCandidate* c) {
      return std::none_of(c->sources.begin(), c->sources.end(),
                          [&](const SocketAddress& ip) { return facts.wanted.contains(ip); });
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

absl::StatusOr<std::vector<SocketAddress>> ChooseSources(const v1::RunSpec& spec,
                                                         const SpecFacts& facts,
                                                         const AgentCandidate& agent) {
  const v1::Hello& hello = agent.hello;
  std::vector<SocketAddress> sources;
  if (!BindsSourceIps(spec.bind_mode())) return sources;
  std::vector<SocketAddress> offered = facts.sources.Offered(agent.sources);
  if (!facts.wanted.empty()) {
    for (const SocketAddress& ip : offered) {
      if (facts.wanted.contains(ip)) sources.push_back(ip);
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

// Each agent's weight in the split. A run that holds its connections open is split by how many
// each agent's host can hold (analysis::HoldCapacity: its four-tuples, and its part of its
// kernel's fs.file-max and memory, which the agents on one kernel share), so a larger host takes
// a larger share; otherwise, or when an agent does not say, evenly.
std::vector<uint64_t> HoldWeights(const v1::RunSpec& spec, const analysis::RunShape& shape,
                                  const std::vector<const AgentCandidate*>& agents,
                                  const std::vector<Assignment>& plan) {
  std::vector<uint64_t> even(plan.size(), 1);
  if (spec.hold().seconds() <= 0 && spec.hold().nanos() <= 0) return even;
  std::vector<const v1::Hello*> hellos;
  for (size_t i = 0; i < plan.size(); ++i) hellos.push_back(&agents[i]->hello);
  const std::vector<uint32_t> sharing = analysis::AgentsPerKernel(hellos);
  std::vector<uint64_t> weights;
  for (size_t i = 0; i < plan.size(); ++i) {
    analysis::ShardFacts facts{&agents[i]->hello, plan[i].sources};
    uint64_t capacity = analysis::HoldCapacity(shape, facts, sharing[i]);
    if (capacity == 0) return even;
    weights.push_back(capacity);
  }
  return weights;
}

// FAILED_PRECONDITION when `share` is above a cap the agent said it keeps (its hello's
// --max-rate, --max-in-flight): it would refuse the shard, and the run would start without it.
// The checks are the agent's own (agent_session.cc), made before anything is sent. The closed
// model has no rate to refuse: the agent paces its starts under its cap.
absl::Status CheckAgentCaps(const AgentCandidate& agent, const Assignment& share) {
  const v1::Hello& hello = agent.hello;
  if (hello.max_rate() > 0 && share.rate > hello.max_rate()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "agent %s: its share, %.1f conn/s, is above its --max-rate %.1f (ask for less, or more "
        "agents)",
        hello.name(), share.rate, hello.max_rate()));
  }
  const int64_t in_flight = share.rate > 0 ? share.max_in_flight : share.concurrency;
  if (hello.max_in_flight() > 0 && in_flight > hello.max_in_flight()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "agent ", hello.name(), ": its share, ", share.rate > 0 ? "max_in_flight " : "concurrency ",
        in_flight, ", is above its --max-in-flight ", hello.max_in_flight(),
        " (ask for less, or more agents)"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<int64_t> SplitEvenly(int64_t total, int parts) {
  std::vector<int64_t> out(parts, total / parts);
  for (int64_t i = 0; i < total % parts; ++i) ++out[i];
  return out;
}

std::vector<int64_t> SplitByWeight(int64_t total, const std::vector<uint64_t>& weights) {
  const int parts = static_cast<int>(weights.size());
  // Exact in integers: total * w / sum and its remainder, in 128 bits.
  using U128 = unsigned __int128;
  U128 sum = 0;
  for (uint64_t w : weights) sum += w;
  if (sum == 0 || total <= 0) return SplitEvenly(total, parts);
  std::vector<int64_t> out(parts);
  std::vector<std::pair<U128, int>> remainders;  // largest first, then by index
  int64_t given = 0;
  for (int i = 0; i < parts; ++i) {
    U128 share = static_cast<U128>(total) * weights[i];
    out[i] = static_cast<int64_t>(share / sum);
    given += out[i];
    remainders.push_back({share % sum, i});
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int64_t k = 0; k < total - given; ++k) ++out[remainders[k].second];  // fewer than parts
  // Every part gets at least one where the total allows: from the largest share.
  for (int i = 0; i < parts && total >= parts; ++i) {
    if (out[i] > 0) continue;
    --*std::max_element(out.begin(), out.end());
    ++out[i];
  }
  return out;
}

std::vector<double> SplitRate(double rate, int parts) {
  return SplitRateByWeight(rate, std::vector<uint64_t>(parts, 1));
}

std::vector<double> SplitRateByWeight(double rate, const std::vector<uint64_t>& weights) {
  double whole = std::floor(rate);
  std::vector<int64_t> shares = SplitByWeight(static_cast<int64_t>(whole), weights);
  std::vector<double> out(shares.begin(), shares.end());
  out[0] += rate - whole;
  return out;
}

absl::StatusOr<std::vector<Assignment>> PlanRun(const v1::RunSpec& spec,
                                                const std::vector<AgentCandidate>& candidates) {
  return PlanRun(spec, analysis::ShapeOf(spec), candidates);
}

absl::StatusOr<std::vector<Assignment>> PlanRun(const v1::RunSpec& spec,
                                                const analysis::RunShape& shape,
                                                const std::vector<AgentCandidate>& candidates) {
  SpecFacts facts(spec, shape);
  absl::StatusOr<std::vector<const AgentCandidate*>> agents = ChooseAgents(spec, facts, candidates);
  if (!agents.ok()) return agents.status();
  std::vector<Assignment> plan;
  absl::flat_hash_set<SocketAddress> covered;
  for (const AgentCandidate* agent : *agents) {
    absl::StatusOr<std::vector<SocketAddress>> sources = ChooseSources(spec, facts, *agent);
    if (!sources.ok()) return sources.status();
    covered.insert(sources->begin(), sources->end());
    plan.push_back(Assignment{agent->hello.name(), *std::move(sources)});
  }
  for (const SocketAddress& ip : shape.wanted_sources) {
    if (!covered.contains(ip)) {
      return absl::FailedPreconditionError(
          absl::StrCat("source_ips: no chosen agent offers ", ip.IpString()));
    }
  }
  int n = static_cast<int>(plan.size());
  std::vector<uint64_t> weights = HoldWeights(spec, shape, *agents, plan);
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
    std::vector<double> rates = SplitRateByWeight(spec.rate(), weights);
    std::vector<int64_t> in_flight = SplitByWeight(spec.max_in_flight(), weights);
    for (int i = 0; i < n; ++i) {
      plan[i].rate = rates[i];
      plan[i].max_in_flight = in_flight[i];
    }
  } else {
    if (spec.concurrency() < n) {
      return absl::FailedPreconditionError(
          absl::StrCat("concurrency: ", spec.concurrency(), " cannot be shared by ", n, " agents"));
    }
    std::vector<int64_t> shares = SplitByWeight(spec.concurrency(), weights);
    for (int i = 0; i < n; ++i) plan[i].concurrency = shares[i];
  }
  for (int i = 0; i < n; ++i) RETURN_IF_ERROR(CheckAgentCaps(*(*agents)[i], plan[i]));
  return plan;
}

std::vector<SocketAddress> NamedTargetAddresses(const analysis::RunShape& shape) {
  std::vector<SocketAddress> out;
  for (const NamedTarget& name : shape.named_targets) {
    absl::StatusOr<std::vector<SocketAddress>> found = ResolveName(name);
    if (found.ok()) out.insert(out.end(), found->begin(), found->end());
  }
  return out;
}

bool ObserverServesTargets(const std::vector<SocketAddress>& listening,
                           const analysis::RunShape& shape,
                           const std::vector<SocketAddress>& named) {
  std::vector<SocketAddress> targets = named;
  targets.insert(targets.end(), shape.targets.begin(), shape.targets.end());
  for (const SocketAddress& listen : listening) {
    for (const SocketAddress& target : targets) {
      if (target.port() != listen.port()) continue;
      if (target == listen) return true;
      // A wildcard listener accepts on every address of its family; [::] takes IPv4 clients too
      // (as v4-mapped sockets) unless IPV6_V6ONLY, which the target does not set.
      if (listen.is_unspecified() &&
          (target.family() == listen.family() || listen.family() == AF_INET6)) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace churnlab
