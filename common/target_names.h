// Targets given by host name ("api.example:443"): parsing them beside IP literals, and resolving
// them on the host that connects (getaddrinfo, both families), so that every address a name has
// there is a destination of the run and the allow-list is checked against what DNS said.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/net_address.h"

namespace churnlab {

// A destination given by name.
struct NamedTarget {
  std::string host;  // "api.example"
  uint16_t port = 0;
};

// At most this many addresses of one name are used (a name with more is cut, and the report
// says how many it had).
inline constexpr size_t kMaxAddressesPerName = 16;
// The longest a name's lookup may take; past it the lookup fails (UNAVAILABLE) and the caller
// goes on.
inline constexpr absl::Duration kResolveTimeout = absl::Seconds(5);

// "host:port" with a DNS name (labels of letters, digits, '-' and '_', at most 63 bytes each,
// 253 in all; a trailing dot allowed). INVALID_ARGUMENT naming `text` otherwise. IP literals are
// SocketAddress::ParseIpPort's.
absl::StatusOr<NamedTarget> ParseNamedTarget(absl::string_view text);

// Every address `target` has here (both families, in getaddrinfo's order, each once, with its
// port), within kResolveTimeout. UNAVAILABLE naming the name when it does not resolve (or no
// answer came in time).
absl::StatusOr<std::vector<SocketAddress>> ResolveName(const NamedTarget& target);

// What one name resolved to: the addresses used (the run's family, at most
// kMaxAddressesPerName), and how many it had in all.
struct Resolution {
  NamedTarget target;
  std::vector<SocketAddress> addresses;
  size_t found = 0;
};

// The family a run of these targets uses: that of its IP targets; else IPv4 when the first
// name and the source IPs (when there are any) both have IPv4, else IPv6 when both have that;
// else the first name's (`first_name_families` says which families it resolved to, as bits
// 1 = IPv4, 2 = IPv6).
int RunFamily(const std::vector<SocketAddress>& ip_targets,
              const std::vector<SocketAddress>& source_ips, int first_name_families);

// Resolves every name with getaddrinfo and keeps the addresses of the run's family (RunFamily).
// UNAVAILABLE naming the name and getaddrinfo's word when it fails (or has no address of that
// family); the caller checks the allow-list against the result.
absl::StatusOr<std::vector<Resolution>> ResolveTargets(
    const std::vector<NamedTarget>& names, const std::vector<SocketAddress>& ip_targets,
    const std::vector<SocketAddress>& source_ips);

// An allow-list of targets: address blocks ("10.0.0.0/8", "::1"), and host names whose
// addresses, resolved where the check runs (both families), are allowed too. A name is the
// user's word that its addresses may be loaded; DNS widens nothing else.
struct AllowList {
  std::vector<Cidr> blocks;
  std::vector<std::string> hosts;
  // Each entry as given, blocks first ("127.0.0.0/8,::1/128,api.example").
  std::vector<std::string> Entries() const;
};
// INVALID_ARGUMENT naming the entry that is neither a block nor a host name.
absl::StatusOr<AllowList> ParseAllowList(absl::string_view text);
// OK when every target is inside the list, its names resolved now (getaddrinfo); otherwise
// PERMISSION_DENIED naming the first target that is not, the list, and what each name resolved
// to (a name that does not resolve allows nothing, and says why).
absl::Status CheckTargetsAllowed(const std::vector<SocketAddress>& targets,
                                 const AllowList& allowed);

}  // namespace churnlab
