// Which of an agent's source IPs a run may use: those of the targets' address family (a
// dual-stack agent offering 127.0.0.1 and ::1 takes part in IPv4 runs with the first only) that
// the spec does not exclude. The one rule for the scheduler and for `churnlab compare`, which
// leaves out the address its single run used.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "analysis/run_shape.h"
#include "common/net_address.h"

namespace churnlab::analysis {

class RunSources {
 public:
  // The targets' family and the exclusions from `shape` (the spec parsed once): each agent is
  // then a pass over its addresses.
  explicit RunSources(const RunShape& shape);

  // Of an agent's source IPs (its hello's, parsed: SourceAddressesOf), those the run may use, in
  // their order.
  std::vector<SocketAddress> Offered(std::span<const SocketAddress> sources) const;
  // "" when the agent offers one; otherwise why not, in words for an error.
  std::string WhyNone(std::span<const SocketAddress> sources) const;

 private:
  bool OfFamily(const SocketAddress& ip) const;

  int family_;  // AF_UNSPEC when no target parses
  absl::flat_hash_set<SocketAddress> excluded_;
};

}  // namespace churnlab::analysis
