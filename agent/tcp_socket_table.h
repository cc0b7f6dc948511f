// Reads the kernel's TCP socket table through netlink sock_diag (NETLINK_INET_DIAG): the same
// source `ss` uses, without running it or parsing /proc/net/tcp.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net_address.h"

namespace churnlab {

// Linux TCP states (include/net/tcp_states.h).
enum class TcpState : uint8_t {
  kEstablished = 1,
  kSynSent,
  kSynRecv,
  kFinWait1,
  kFinWait2,
  kTimeWait,
  kClose,
  kCloseWait,
  kLastAck,
  kListen,
  kClosing,
};
const char* TcpStateName(TcpState state);  // "ESTABLISHED", "TIME_WAIT", ...

struct TcpSocketInfo {
  TcpState state;
  SocketAddress local;
  SocketAddress remote;
};

// Every TCP socket of `family` (AF_INET or AF_INET6) in this network namespace, TIME_WAIT ones
// included. An errno status when the netlink socket cannot be opened or read.
absl::StatusOr<std::vector<TcpSocketInfo>> DumpTcpSockets(int family);

// The same, but the kernel only returns non-listening sockets whose remote port lies in
// [min_remote_port, max_remote_port] (an inet_diag bytecode filter), which is much cheaper on a
// host with many unrelated sockets.
absl::StatusOr<std::vector<TcpSocketInfo>> DumpTcpSocketsToPorts(int family, int min_remote_port,
                                                                 int max_remote_port);

}  // namespace churnlab
