// Which source IPs an agent offers, from its flags: a list (--source-ips), this host's addresses
// inside CIDRs (--source-cidrs), N addresses of a prefix routed to this host (--source-prefix and
// --source-count; or --source-prefix-within, which finds the prefix: each node of a cluster has
// its own), or this host's own addresses.
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
  // Instead of source_prefix: the one IPv6 prefix inside this block that this host routes
  // `local` (LocalIpv6Prefixes()).
  std::string source_prefix_within;
  int64_t source_count = 0;
};

// The addresses the agent binds, each checked to be this host's (assigned, or routed `local`:
// see CheckLocalBinding). INVALID_ARGUMENT naming the flag when one is malformed or two exclude
// each other; FAILED_PRECONDITION naming the flag when the kernel will not bind or route an
// address it gives.
absl::StatusOr<std::vector<SocketAddress>> ResolveSources(const SourceFlags& flags);

}  // namespace churnlab
