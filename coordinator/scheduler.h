// Which agents and source IPs run a spec, and each one's exact share of the load.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "analysis/run_shape.h"
#include "churnlab/v1/agent.pb.h"
#include "churnlab/v1/spec.pb.h"
#include "common/net_address.h"

namespace churnlab {

struct AgentCandidate {
  v1::Hello hello;
  std::vector<SocketAddress> sources;  // hello's source IPs, parsed (SourceAddressesOf)
  bool busy = false;
};

struct Assignment {
  std::string agent;
  std::vector<SocketAddress> sources;  // empty under bind mode none
  double rate = 0;
  int64_t concurrency = 0;
  int64_t max_in_flight = 0;
};

// `total` in `parts` integers that differ by at most one and add up to `total` exactly.
std::vector<int64_t> SplitEvenly(int64_t total, int parts);
// `total` in shares in proportion to `weights` (largest remainder; ties to the earlier part)
// that add up to `total` exactly, each at least one where `total` allows. All-zero weights:
// evenly.
std::vector<int64_t> SplitByWeight(int64_t total, const std::vector<uint64_t>& weights);
// A rate in shares: whole connections/s split as SplitEvenly (SplitByWeight), the fraction to
// the first, so the shares add up to `rate` exactly.
std::vector<double> SplitRate(double rate, int parts);
std::vector<double> SplitRateByWeight(double rate, const std::vector<uint64_t>& weights);

// Picks agents (spec.agent_names, else the first spec.agents idle agents that allow every target,
// by name; 0 = all of them) and their source IPs (spec.source_ips, else the first
// spec.source_ips_per_agent of each; 0 = all), then splits rate or concurrency and max_in_flight:
// evenly, or, for a run that holds connections open, by what each agent's host can hold.
// FAILED_PRECONDITION naming the agent or address when the spec cannot be met.
absl::StatusOr<std::vector<Assignment>> PlanRun(const v1::RunSpec& spec,
                                                const std::vector<AgentCandidate>& candidates);
// The same with the spec's strings already parsed (the coordinator parses a run's once).
absl::StatusOr<std::vector<Assignment>> PlanRun(const v1::RunSpec& spec,
                                                const analysis::RunShape& shape,
                                                const std::vector<AgentCandidate>& candidates);

// An observer's listen addresses, parsed once as its hello enters (ValidateHello checked them).

// True when an observer (a churnlab-target reporting its host) listening on `listening` serves
// one of the run's targets: it listens on that ip:port, or on the wildcard (0.0.0.0, ::) at that
// port. A target given by name counts by `named`, the addresses its names resolve to here
// (NamedTargetAddresses). A report names only such observers.
bool ObserverServesTargets(const std::vector<SocketAddress>& listening,
                           const analysis::RunShape& shape,
                           const std::vector<SocketAddress>& named = {});

// Every address of the run's targets given by name, as this host resolves them (within
// kResolveTimeout each; a name that does not resolve adds none). For matching observers only:
// the agents resolve the names they load themselves.
std::vector<SocketAddress> NamedTargetAddresses(const analysis::RunShape& shape);

}  // namespace churnlab
