// Which source IPs an agent offers, from its flags: a list (--source-ips), this host's addresses
// inside CIDRs (--source-cidrs), N addresses of a prefix routed to this host (--source-prefix and
// --source-count), or this host's own addresses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net_address.h"

namespace churnlab {

struct SourceFlags {
  std::string source_ips;
  std::string source_cidrs;
  std::string source_prefix;
  int64_t source_count = 0;
};

// The addresses the agent binds, each checked to be this host's (assigned, or routed `local`:
// see CheckLocalBinding). INVALID_ARGUMENT naming the flag when one is malformed or two exclude
// each other; FAILED_PRECONDITION naming the flag when the kernel will not bind or route an
// address it gives.
absl::StatusOr<std::vector<SocketAddress>> ResolveSources(const SourceFlags& flags);

}  // namespace churnlab
