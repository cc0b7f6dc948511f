// Which of an agent's source IPs a run may use: those of the targets' address family (a
// dual-stack agent offering 127.0.0.1 and ::1 takes part in IPv4 runs with the first only) that
// the spec does not exclude. The one rule for the scheduler and for `churnlab compare`, which
// leaves out the address its single run used.
#pragma once

#include <string>
#include <unordered_set>
#include <vector>

#include "analysis/run_shape.h"
#include "churnlab/v1/agent.pb.h"
#include "churnlab/v1/spec.pb.h"

namespace churnlab::analysis {

class RunSources {
 public:
  // The targets' family from `shape` (the spec parsed once), the exclusions from `spec`: each
  // agent is then a pass over its addresses.
  RunSources(const RunShape& shape, const v1::RunSpec& spec);

  // The agent's source IPs the run may use, in its hello's order.
  std::vector<std::string> Offered(const v1::Hello& hello) const;
  // "" when the agent offers one; otherwise why not, in words for an error.
  std::string WhyNone(const v1::Hello& hello) const;

 private:
  bool OfFamily(const std::string& ip) const;

  int family_;  // AF_UNSPEC when no target parses
  std::unordered_set<std::string> excluded_;
};

}  // namespace churnlab::analysis
