// IPv4/IPv6 socket addresses: parsing "ip:port" and "[v6]:port" from flags, printing them back.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <utility>
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
  // The wildcard of `family` (AF_INET: 0.0.0.0, otherwise ::), port 0.
  static SocketAddress Any(int family);

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

  // Same family, address and port (an IPv6 scope or flow label aside), as ToString compares.
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) {
    return a.family() == b.family() && a.port() == b.port() && a.AddressBytes() == b.AddressBytes();
  }
  template <typename H>
  friend H AbslHashValue(H h, const SocketAddress& a) {
    return H::combine(std::move(h), a.family(), a.port(), a.AddressBytes());
  }

 private:
  // The address's bytes (4 or 16; none for an empty address).
  absl::string_view AddressBytes() const;

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
  const SocketAddress& base() const { return base_; }
  int prefix_bits() const { return prefix_bits_; }

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

// How a socket binds to one of this host's addresses.
enum class LocalBinding {
  kAssigned,     // on an interface (or 127.0.0.0/8, or IPv4 AnyIP): bind() takes it as is
  kRoutedLocal,  // inside an IPv6 prefix routed `local` (AnyIP) but on no interface: the kernel
                 // delivers to it, and bind() needs IPV6_FREEBIND first
};

// The socket option that lets bind() take an address on no interface: IP_FREEBIND for IPv4,
// IPV6_FREEBIND for IPv6.
struct SocketOption {
  int level;
  int name;
};
SocketOption FreeBindOption(int family);

// How `ip` binds on this host; FAILED_PRECONDITION naming the address and the kernel's reason when
// it is not one of this host's: neither assigned nor inside a prefix routed `local` (for which
// IPV6_FREEBIND alone is not enough: the kernel would bind to it and never deliver the replies).
absl::StatusOr<LocalBinding> CheckLocalBinding(const SocketAddress& ip);
// OK when CheckLocalBinding() finds `ip` to be an address of this host, either way.
absl::Status CheckAddressIsLocal(const SocketAddress& ip);

}  // namespace churnlab
