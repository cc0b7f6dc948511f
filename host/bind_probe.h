// Which ports connect() skips for every source and destination because bind() took them.
//
// The kernel's connect() picks a port in __inet_hash_connect and passes over every port whose
// bind bucket bind() made (fastreuse >= 0), whatever that socket's address, state or program:
// a server listening inside the range, a client's bind(ip, 0), bind-any's bind(0.0.0.0, 0), and
// their TIME_WAIT. A port connect() itself took stays usable toward any other four-tuple. No
// table the kernel exports (sock_diag, /proc/net/tcp) says which call made a bucket, so this asks
// the kernel's own port choice, port by port: a socket in TCP repair mode whose local range is
// that one port (IP_LOCAL_PORT_RANGE) connects to a loopback address nobody uses. In repair mode
// connect() runs the port choice but sends no SYN, and shutdown() then close() send nothing: no
// packet leaves, no TCP counter moves, and the port is free again at once. It needs
// CAP_NET_ADMIN (repair mode) and Linux 6.3 or later (the per-socket range); without them the
// answer is unknown, not guessed.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "host/host_facts.h"

namespace churnlab {

// Of `held` (ports some socket holds, within ip_local_port_range), the ones connect() skips for
// every destination. Ports in ip_local_reserved_ports are left out (connect() skips them too,
// but they are counted as reserved). Unavailable when the kernel cannot be asked this way.
absl::StatusOr<std::unique_ptr<PortSet>> BindTakenPorts(const PortSet& held);

}  // namespace churnlab
