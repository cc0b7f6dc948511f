#include "host/tcp_socket_table.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <span>

namespace churnlab {
namespace {

SocketAddress FromDiag(int family, const __be32* addr, __be16 port) {
  sockaddr_storage storage{};
  if (family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = AF_INET;
    v4->sin_port = port;
    memcpy(&v4->sin_addr, addr, 4);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = port;
    memcpy(&v6->sin6_addr, addr, 16);
  }
  return *SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&storage), sizeof(storage));
}

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { close(fd_); }

 private:
  int fd_;
};

}  // namespace

uint32_t AllButListen() { return ~0u & ~(1u << static_cast<int>(TcpState::kListen)); }

namespace {

// Asks the kernel on `fd` for a dump of the TCP sockets of `family` in `states`, filtered by
// port in the kernel when `filter` says.
absl::Status SendDumpRequest(int fd, int family, uint32_t states, PortFilter filter) {
  // port >= min and <= max. Each comparison is followed by an op that carries the port in its
  // `no` field; a failed comparison jumps past the end (len + 4), which rejects.
  constexpr int kOps = 4;
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
    rtattr attribute;
    inet_diag_bc_op ops[kOps];
  } message{};
  bool filtered = filter.side != PortFilter::Side::kAny;
  bool local = filter.side == PortFilter::Side::kLocal;
  size_t length = filtered ? sizeof(message) : offsetof(decltype(message), attribute);
  message.header.nlmsg_len = static_cast<uint32_t>(length);
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.request.sdiag_family = static_cast<uint8_t>(family);
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = states;
  if (filtered) {
    constexpr uint16_t kBytes = sizeof(message.ops);
    constexpr uint16_t kOp = sizeof(inet_diag_bc_op);
    message.attribute.rta_type = INET_DIAG_REQ_BYTECODE;
    message.attribute.rta_len = RTA_LENGTH(kBytes);
    uint8_t ge = local ? INET_DIAG_BC_S_GE : INET_DIAG_BC_D_GE;
    uint8_t le = local ? INET_DIAG_BC_S_LE : INET_DIAG_BC_D_LE;
    message.ops[0] = {ge, 2 * kOp, static_cast<uint16_t>(kBytes + 4)};
    message.ops[1] = {INET_DIAG_BC_NOP, 0, static_cast<uint16_t>(filter.min_port)};
    message.ops[2] = {le, 2 * kOp, static_cast<uint16_t>(kBytes - 2 * kOp + 4)};
    message.ops[3] = {INET_DIAG_BC_NOP, 0, static_cast<uint16_t>(filter.max_port)};
  }
  if (send(fd, &message, length, 0) < 0) return absl::ErrnoToStatus(errno, "sock_diag send");
  return absl::OkStatus();
}

}  // namespace

absl::Status VisitTcpSockets(int family, uint32_t states, PortFilter filter,
                             const std::function<void(const RawTcpSocket&)>& visit) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket(NETLINK_SOCK_DIAG)");
  FdCloser closer(fd);
  if (absl::Status sent = SendDumpRequest(fd, family, states, filter); !sent.ok()) return sent;

  // The kernel fills up to this much per recv(); larger means fewer syscalls for big tables.
  static thread_local std::vector<char> buffer(256 * 1024);
  while (true) {
    ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "sock_diag recv");
    }
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer.data()); NLMSG_OK(h, n);
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return absl::OkStatus();
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        return absl::ErrnoToStatus(-err->error, "sock_diag dump");
      }
      auto* diag = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
      visit(RawTcpSocket{diag->idiag_family, static_cast<TcpState>(diag->idiag_state),
                         reinterpret_cast<const uint8_t*>(diag->id.idiag_src),
                         reinterpret_cast<const uint8_t*>(diag->id.idiag_dst),
                         ntohs(diag->id.idiag_sport), ntohs(diag->id.idiag_dport),
                         diag->idiag_inode});
    }
  }
}

namespace {

absl::StatusOr<std::vector<TcpSocketInfo>> Dump(int family, uint32_t states, PortFilter filter) {
  std::vector<TcpSocketInfo> sockets;
  absl::Status status = VisitTcpSockets(family, states, filter, [&](const RawTcpSocket& s) {
    sockets.push_back(TcpSocketInfo{
        s.state,
        FromDiag(s.family, reinterpret_cast<const __be32*>(s.local_address), htons(s.local_port)),
        FromDiag(s.family, reinterpret_cast<const __be32*>(s.remote_address),
                 htons(s.remote_port))});
  });
  if (!status.ok()) return status;
  return sockets;
}

}  // namespace

absl::StatusOr<std::vector<TcpSocketInfo>> DumpTcpSockets(int family) {
  return Dump(family, ~0u, PortFilter{});
}

absl::StatusOr<std::vector<TcpSocketInfo>> DumpTcpSocketsToPorts(int family, int min_remote_port,
                                                                 int max_remote_port) {
  return Dump(family, AllButListen(),
              PortFilter{PortFilter::Side::kRemote, min_remote_port, max_remote_port});
}

absl::StatusOr<std::vector<TcpSocketInfo>> DumpTcpSocketsFromPorts(int family, int min_local_port,
                                                                   int max_local_port) {
  return Dump(family, ~0u, PortFilter{PortFilter::Side::kLocal, min_local_port, max_local_port});
}

}  // namespace churnlab
