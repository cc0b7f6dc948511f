#include "common/net_address.h"

#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/local_route.h"

namespace churnlab {

absl::StatusOr<SocketAddress> SocketAddress::FromSockaddr(const sockaddr* addr, socklen_t len) {
  if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported address family ", addr->sa_family));
  }
  SocketAddress out;
  memcpy(&out.storage_, addr, std::min<size_t>(len, sizeof(out.storage_)));
  out.length_ = addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  return out;
}

absl::StatusOr<SocketAddress> SocketAddress::ParseIp(absl::string_view text) {
  SocketAddress out;
  std::string ip(text);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    out.length_ = sizeof(sockaddr_in);
    return out;
  }
  out.storage_ = {};
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    out.length_ = sizeof(sockaddr_in6);
    return out.Unmapped();
  }
  return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not an IPv4 or IPv6 address"));
}

SocketAddress SocketAddress::Any(int family) {
  SocketAddress out;
  out.storage_.ss_family = family == AF_INET ? AF_INET : AF_INET6;
  out.length_ = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  return out;
}

absl::StatusOr<SocketAddress> SocketAddress::ParseIpPort(absl::string_view text) {
  absl::string_view host;
  absl::string_view port_text;
  if (absl::StartsWith(text, "[")) {
    size_t close = text.find("]:");
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "' is not [IPv6]:PORT (expected like [::1]:9000)"));
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos || text.find(':') != colon) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "' is not IP:PORT (expected like 127.0.0.1:9000 or [::1]:9000)"));
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' has port '", port_text, "', not a number in 0..65535"));
  }
  absl::StatusOr<SocketAddress> out = ParseIp(host);
  if (!out.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': ", out.status().message()));
  }
  out->set_port(port);
  return out;
}

bool SocketAddress::is_v4_mapped() const {
  return family() == AF_INET6 &&
         IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
}

SocketAddress SocketAddress::Unmapped() const {
  if (!is_v4_mapped()) return *this;
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
  SocketAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
  v4->sin_family = AF_INET;
  v4->sin_port = v6->sin6_port;
  memcpy(&v4->sin_addr, &v6->sin6_addr.s6_addr[12], 4);
  out.length_ = sizeof(sockaddr_in);
  return out;
}

int SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

void SocketAddress::set_port(int port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

bool SocketAddress::is_loopback() const {
  if (family() == AF_INET) {
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr) >> 24) == 127;
  }
  if (family() == AF_INET6) {
    return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
  }
  return false;
}

bool SocketAddress::is_unspecified() const {
  if (family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr == INADDR_ANY;
  }
  if (family() == AF_INET6) {
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
  }
  return false;
}

absl::string_view SocketAddress::AddressBytes() const {
  if (family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&storage_);
    return {reinterpret_cast<const char*>(&v4->sin_addr), sizeof(v4->sin_addr)};
  }
  if (family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    return {reinterpret_cast<const char*>(&v6->sin6_addr), sizeof(v6->sin6_addr)};
  }
  return {};
}

std::string SocketAddress::IpString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
              sizeof(buf));
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof(buf));
  }
  return buf;
}

std::string SocketAddress::ToString() const {
  if (family() == AF_INET6) return absl::StrCat("[", IpString(), "]:", port());
  return absl::StrCat(IpString(), ":", port());
}

namespace {

template <typename ParseOne>
absl::StatusOr<std::vector<SocketAddress>> ParseList(absl::string_view text, ParseOne parse) {
  std::vector<SocketAddress> out;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    if (item.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "' has an empty list item"));
    }
    absl::StatusOr<SocketAddress> addr = parse(item);
    if (!addr.ok()) return addr.status();
    out.push_back(*addr);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<SocketAddress>> ParseIpPortList(absl::string_view text) {
  return ParseList(text, SocketAddress::ParseIpPort);
}

absl::StatusOr<std::vector<SocketAddress>> ParseIpList(absl::string_view text) {
  return ParseList(text, SocketAddress::ParseIp);
}

absl::StatusOr<Cidr> Cidr::Parse(absl::string_view text) {
  size_t slash = text.find('/');
  absl::string_view base_text = text.substr(0, slash);
  absl::StatusOr<SocketAddress> base = SocketAddress::ParseIp(base_text);
  if (!base.ok()) return base.status();
  // ParseIp gives an IPv4-mapped base (::ffff:a.b.c.d) as IPv4; its prefix counts 96 bits more.
  bool mapped = base->family() == AF_INET && absl::StrContains(base_text, ':');
  int min_bits = mapped ? 96 : 0;
  int max_bits = base->family() == AF_INET6 || mapped ? 128 : 32;
  int bits = max_bits;
  if (slash != absl::string_view::npos &&
      (!absl::SimpleAtoi(text.substr(slash + 1), &bits) || bits < min_bits || bits > max_bits)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' has a prefix length outside ",
                                                   min_bits, "..", max_bits,
                                                   mapped ? " (an IPv4-mapped block)" : ""));
  }
  if (mapped) bits -= 96;
  Cidr out;
  out.base_ = *base;
  out.prefix_bits_ = bits;
  return out;
}

namespace {

// The address bytes in network order: 4 for IPv4, 16 for IPv6.
const uint8_t* AddressBytes(const SocketAddress& a) {
  if (a.family() == AF_INET) {
    return reinterpret_cast<const uint8_t*>(
        &reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr())->sin_addr);
  }
  return reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr())->sin6_addr.s6_addr;
}

}  // namespace

bool Cidr::Contains(const SocketAddress& given) const {
  // An IPv4 destination written as ::ffff:a.b.c.d is that IPv4 address: `::/0` must not admit
  // it, and 10.0.0.0/8 must.
  SocketAddress address = given.Unmapped();
  if (address.family() != base_.family()) return false;
  const uint8_t* a = AddressBytes(address);
  const uint8_t* b = AddressBytes(base_);
  int bits = prefix_bits_;
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a[i] & mask) != (b[i] & mask)) return false;
  }
  return true;
}

std::string Cidr::ToString() const { return absl::StrCat(base_.IpString(), "/", prefix_bits_); }

absl::StatusOr<std::vector<Cidr>> ParseCidrList(absl::string_view text) {
  std::vector<Cidr> out;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(item);
    if (!cidr.ok()) return cidr.status();
    out.push_back(*cidr);
  }
  return out;
}

absl::Status CheckTargetsAllowed(const std::vector<SocketAddress>& targets,
                                 const std::vector<Cidr>& allowed) {
  for (const SocketAddress& target : targets) {
    bool ok = false;
    for (const Cidr& cidr : allowed) ok = ok || cidr.Contains(target);
    if (!ok) {
      std::vector<std::string> names;
      for (const Cidr& cidr : allowed) names.push_back(cidr.ToString());
      return absl::PermissionDeniedError(absl::StrCat("target ", target.ToString(),
                                                      " is outside the allowed targets ",
                                                      absl::StrJoin(names, ",")));
    }
  }
  return absl::OkStatus();
}

SocketOption FreeBindOption(int family) {
  if (family == AF_INET6) return {IPPROTO_IPV6, IPV6_FREEBIND};
  return {IPPROTO_IP, IP_FREEBIND};
}

namespace {

// 0 when a socket binds to `ip` (with FREEBIND first when `free_bind`), else bind()'s errno.
int TryBind(const SocketAddress& ip, bool free_bind) {
  int fd = ::socket(ip.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1;
  // Without a port reservation the check costs nothing in the port range.
  ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  if (free_bind) {
    SocketOption opt = FreeBindOption(ip.family());
    if (::setsockopt(fd, opt.level, opt.name, &one, sizeof(one)) != 0) {
      int err = errno;
      ::close(fd);
      return err;
    }
  }
  SocketAddress any_port = ip;
  any_port.set_port(0);
  int rc = ::bind(fd, any_port.sockaddr_ptr(), any_port.length());
  int err = rc == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

}  // namespace

absl::StatusOr<LocalBinding> CheckLocalBinding(const SocketAddress& ip) {
  int err = TryBind(ip, /*free_bind=*/false);
  if (err == 0) return LocalBinding::kAssigned;
  std::string reason = absl::StrCat("bind: ", strerror(err));
  if (err == EADDRNOTAVAIL) {
    absl::StatusOr<bool> local = IsRoutedLocal(ip);
    if (local.ok() && *local) {
      err = TryBind(ip, /*free_bind=*/true);
      if (err == 0) return LocalBinding::kRoutedLocal;
      reason = absl::StrCat("routed local, but bind with FREEBIND: ", strerror(err));
    } else {
      reason += local.ok() ? "; no local route covers it either"
                           : absl::StrCat("; ", local.status().message());
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("source IP ", ip.IpString(), " is not an address of this host (", reason, ")"));
}

absl::Status CheckAddressIsLocal(const SocketAddress& ip) { return CheckLocalBinding(ip).status(); }

}  // namespace churnlab
