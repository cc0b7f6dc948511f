#include "common/source_prefix.h"

#include <string.h>

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"

namespace churnlab {
namespace {

struct AddressBytes {
  std::array<uint8_t, 16> bytes{};
  int size = 0;  // 4 or 16
};

AddressBytes BytesOf(const SocketAddress& a) {
  AddressBytes out;
  if (a.family() == AF_INET) {
    out.size = 4;
    memcpy(out.bytes.data(), &reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr())->sin_addr, 4);
  } else {
    out.size = 16;
    memcpy(out.bytes.data(),
           reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr())->sin6_addr.s6_addr, 16);
  }
  return out;
}

SocketAddress AddressOf(const AddressBytes& a) {
  sockaddr_storage storage{};
  if (a.size == 4) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = AF_INET;
    memcpy(&v4->sin_addr, a.bytes.data(), 4);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    v6->sin6_family = AF_INET6;
    memcpy(v6->sin6_addr.s6_addr, a.bytes.data(), 16);
  }
  // Only AF_INET and AF_INET6 are built above, which FromSockaddr always accepts.
  return *SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&storage), sizeof(storage));
}

// `a` plus `n`, carrying across bytes; the caller keeps it inside the prefix.
void Add(AddressBytes& a, uint64_t n) {
  for (int i = a.size - 1; i >= 0 && n > 0; --i) {
    uint64_t sum = a.bytes[i] + (n & 0xff);
    a.bytes[i] = static_cast<uint8_t>(sum);
    n = (n >> 8) + (sum >> 8);
  }
}

bool HasHostBits(const AddressBytes& a, int prefix_bits) {
  for (int bit = prefix_bits; bit < a.size * 8; ++bit) {
    if (a.bytes[bit / 8] & (0x80 >> (bit % 8))) return true;
  }
  return false;
}

int HostBits(const Cidr& prefix) {
  return (prefix.base().family() == AF_INET ? 32 : 128) - prefix.prefix_bits();
}

}  // namespace

uint64_t UsablePrefixAddresses(const Cidr& prefix) {
  int host_bits = HostBits(prefix);
  if (host_bits == 0) return 1;
  if (host_bits == 1) return 2;
  if (host_bits >= 64) return UINT64_MAX;
  uint64_t size = uint64_t{1} << host_bits;
  return prefix.base().family() == AF_INET ? size - 2 : size - 1;
}

absl::StatusOr<std::vector<SocketAddress>> ExpandSourcePrefix(const Cidr& prefix, int64_t count) {
  AddressBytes base = BytesOf(prefix.base());
  if (HasHostBits(base, prefix.prefix_bits())) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix.ToString(), " has bits set past its length ", prefix.prefix_bits()));
  }
  uint64_t most = std::min<uint64_t>(UsablePrefixAddresses(prefix), kMaxPrefixSources);
  if (count < 1 || static_cast<uint64_t>(count) > most) {
    return absl::InvalidArgumentError(absl::StrCat(
        "count ", count, " is outside 1..", most, " (", prefix.ToString(), " has ",
        UsablePrefixAddresses(prefix) == UINT64_MAX ? std::string("more than 2^64")
                                                    : absl::StrCat(UsablePrefixAddresses(prefix)),
        " usable addresses; at most ", kMaxPrefixSources, " are used)"));
  }
  // Small prefixes (/31, /32, /127, /128) have no address to skip.
  if (HostBits(prefix) > 1) Add(base, 1);
  std::vector<SocketAddress> out;
  out.reserve(count);
  for (int64_t i = 0; i < count; ++i, Add(base, 1)) out.push_back(AddressOf(base));
  return out;
}

}  // namespace churnlab
