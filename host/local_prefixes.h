// The IPv6 prefixes this host routes `local` without assigning them to an interface (AnyIP:
// `ip -6 route add local 2001:db8:7::/64 dev lo`), from /proc/net/ipv6_route. On a cluster
// whose nodes each have their own prefix, an agent finds its node's one here.
#pragma once

#include <vector>

#include "absl/strings/string_view.h"
#include "common/net_address.h"

namespace churnlab {

// The local routes (flag RTF_LOCAL) of a /proc/net/ipv6_route text that are shorter than /128,
// in the file's order; malformed lines are skipped.
std::vector<Cidr> ParseLocalIpv6Prefixes(absl::string_view proc_ipv6_route);
// This host's, read now; empty when the file is unreadable (no IPv6).
std::vector<Cidr> LocalIpv6Prefixes();

}  // namespace churnlab
