// IPv4/IPv6 socket addresses: parsing "ip:port" and "[v6]:port" from flags, printing them back.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace churnlab {

class SocketAddress {
 public:
  SocketAddress() = default;
  // Copies a kernel-filled address (from getsockname/accept); AF_INET and AF_INET6 only.
  static absl::StatusOr<SocketAddress> FromSockaddr(const sockaddr* addr, socklen_t len);

  // "127.0.0.1:9000", "[::1]:9000". INVALID_ARGUMENT naming `text` when malformed. An
  // IPv4-mapped IPv6 address ("[::ffff:10.0.0.1]:80") comes back as the IPv4 address it maps,
  // so that allow-lists, families and tuple budgets see what the kernel will send to.
  static absl::StatusOr<SocketAddress> ParseIpPort(absl::string_view text);
  // "127.0.0.2", "::1" (port 0). INVALID_ARGUMENT naming `text` when malformed. IPv4-mapped
  // addresses come back as IPv4, as above.
  static absl::StatusOr<SocketAddress> ParseIp(absl::string_view text);

  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const { return length_; }
  int family() const { return storage_.ss_family; }
  int port() const;
  void set_port(int port);
  bool is_loopback() const;
  // 0.0.0.0 or ::, the wildcard: bound to it, a socket's source address is the kernel's choice.
  bool is_unspecified() const;
  // ::ffff:a.b.c.d (a kernel-filled address from a dual-stack socket can be one).
  bool is_v4_mapped() const;
  // The IPv4 address (same port) an IPv4-mapped one stands for; any other address unchanged.
  SocketAddress Unmapped() const;

  // "127.0.0.1:9000" / "[::1]:9000".
  std::string ToString() const;
  // "127.0.0.1" / "::1".
  std::string IpString() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) {
    return a.ToString() == b.ToString();
  }

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

// Comma-separated lists of the above; an empty item or a bad one is an error naming it.
absl::StatusOr<std::vector<SocketAddress>> ParseIpPortList(absl::string_view text);
absl::StatusOr<std::vector<SocketAddress>> ParseIpList(absl::string_view text);

// An address block, "127.0.0.0/8" or "::1/128"; a bare address means just that address. An
// IPv4-mapped block ("::ffff:10.0.0.0/104") is the IPv4 block it maps (10.0.0.0/8).
class Cidr {
 public:
  // INVALID_ARGUMENT naming `text` when malformed or the prefix is too long for the family (or
  // under 96 for an IPv4-mapped base).
  static absl::StatusOr<Cidr> Parse(absl::string_view text);
  // An IPv4-mapped `address` is matched as the IPv4 address it maps.
  bool Contains(const SocketAddress& address) const;
  std::string ToString() const;

 private:
  SocketAddress base_;
  int prefix_bits_ = 0;
};

// "127.0.0.0/8,::1": the default allow-list of every load source, loopback only.
inline constexpr absl::string_view kLoopbackCidrs = "127.0.0.0/8,::1/128";
absl::StatusOr<std::vector<Cidr>> ParseCidrList(absl::string_view text);
// OK when every target is inside one of `allowed`; otherwise PERMISSION_DENIED naming the first
// target that is not.
absl::Status CheckTargetsAllowed(const std::vector<SocketAddress>& targets,
                                 const std::vector<Cidr>& allowed);

// OK when `ip` is an address of this host (a bind() to it succeeds); otherwise
// FAILED_PRECONDITION naming the address and the kernel's reason.
absl::Status CheckAddressIsLocal(const SocketAddress& ip);

}  // namespace churnlab
