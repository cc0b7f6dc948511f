// Asks the kernel's routing tables (rtnetlink RTM_GETROUTE, what `ip route get` does) whether an
// address is routed `local` to this host. An address inside an AnyIP prefix (`ip -6 route add
// local 2001:db8:7::/64 dev lo`) is delivered locally without being assigned to any interface, so
// binding to it needs IP_FREEBIND for IPv6: a bind() test alone cannot tell it from a stranger.
#pragma once

#include "absl/status/statusor.h"
#include "common/net_address.h"

namespace churnlab {

// True when the kernel's route for `ip` has type RTN_LOCAL (assigned addresses, 127.0.0.0/8, ::1
// and AnyIP prefixes all do), false for any other route or none (ENETUNREACH, EHOSTUNREACH).
// Other errors, such as a netlink socket refused by a sandbox, come back as the errno's status
// naming what failed.
absl::StatusOr<bool> IsRoutedLocal(const SocketAddress& ip);

}  // namespace churnlab
