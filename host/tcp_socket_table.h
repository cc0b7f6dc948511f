// Reads the kernel's TCP socket table through netlink sock_diag (NETLINK_INET_DIAG): the same
// source `ss` uses, without running it or parsing /proc/net/tcp.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net_address.h"
#include "common/tcp_state.h"

namespace churnlab {

struct TcpSocketInfo {
  TcpState state;
  SocketAddress local;
  SocketAddress remote;
};

// One socket as the kernel reports it, without copies: addresses in network byte order (4 bytes
// used for IPv4, 16 for IPv6), ports in host order.
struct RawTcpSocket {
  int family;
  TcpState state;
  const uint8_t* local_address;
  const uint8_t* remote_address;
  uint16_t local_port;
  uint16_t remote_port;
  // The socket's inode (st_ino of its fd); 0 when no process holds it (closed and lingering,
  // or waiting in a listener's accept queue).
  uint32_t inode;
};

// A port range the kernel filters sockets by (an inet_diag bytecode filter), on the local or the
// remote side; kAny filters nothing.
struct PortFilter {
  enum class Side { kAny, kLocal, kRemote };
  Side side = Side::kAny;
  int min_port = 0;
  int max_port = 0;
};

// Calls `visit` for every TCP socket of `family` whose state is in `state_mask` (bits of
// TcpState) and that passes `filter`. An errno status when the netlink socket cannot be opened
// or read.
absl::Status VisitTcpSockets(int family, uint32_t state_mask, PortFilter filter,
                             const std::function<void(const RawTcpSocket&)>& visit);
// Bits of every state but LISTEN.
uint32_t AllButListen();

// Every TCP socket of `family` (AF_INET or AF_INET6) in this network namespace, TIME_WAIT ones
// included, as copies.
absl::StatusOr<std::vector<TcpSocketInfo>> DumpTcpSockets(int family);

// The same, but the kernel only returns non-listening sockets whose remote port lies in
// [min_remote_port, max_remote_port] (an inet_diag bytecode filter), which is much cheaper on a
// host with many unrelated sockets.
absl::StatusOr<std::vector<TcpSocketInfo>> DumpTcpSocketsToPorts(int family, int min_remote_port,
                                                                 int max_remote_port);
// Every TCP socket of `family` whose local port lies in [min_local_port, max_local_port],
// listeners included.
absl::StatusOr<std::vector<TcpSocketInfo>> DumpTcpSocketsFromPorts(int family, int min_local_port,
                                                                   int max_local_port);

}  // namespace churnlab
