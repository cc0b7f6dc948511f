// Source addresses drawn from an address prefix routed to this host (an IPv6 /64 delegated to a
// node or pod, or an AnyIP route `ip -6 route add local PREFIX dev lo`) instead of a list of
// assigned addresses: the agent's --source-prefix and --source-count.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net_address.h"

namespace churnlab {

// More source IPs than this give no larger tuple budget that a test needs (4,096 x 28,232 ports
// is over 115 million tuples per destination) and make every shard longer to check and report.
inline constexpr int64_t kMaxPrefixSources = 4096;

// How many addresses of `prefix` may serve as sources, saturated at UINT64_MAX: all but the
// prefix's own address (IPv6's subnet-router anycast, RFC 4291 2.6.1; IPv4's network address)
// and, for IPv4, the broadcast address; a /127 or /31 gives both its addresses (RFC 6164,
// RFC 3021), a /128 or /32 its one.
uint64_t UsablePrefixAddresses(const Cidr& prefix);

// The first `count` of those, in order: 2001:db8:7::1, ::2, ... for 2001:db8:7::/64.
// INVALID_ARGUMENT naming the prefix when it has bits set past its length, or naming the count
// when it is outside 1..min(UsablePrefixAddresses(prefix), kMaxPrefixSources).
absl::StatusOr<std::vector<SocketAddress>> ExpandSourcePrefix(const Cidr& prefix, int64_t count);

}  // namespace churnlab
