// IP literals for tests: lists of addresses written as text, and back for comparisons.
#pragma once

#include <string>
#include <vector>

#include "common/net_address.h"

namespace churnlab::testing {

// Each of `texts` parsed (a test's own literals: one that does not parse is a bug in the test,
// and comes back as an empty address, which no comparison matches).
inline std::vector<SocketAddress> Ips(const std::vector<std::string>& texts) {
  std::vector<SocketAddress> out;
  for (const std::string& text : texts)
    out.push_back(SocketAddress::ParseIp(text).value_or(SocketAddress()));
  return out;
}

inline std::vector<std::string> IpStrings(const std::vector<SocketAddress>& ips) {
  std::vector<std::string> out;
  for (const SocketAddress& ip : ips) out.push_back(ip.IpString());
  return out;
}

}  // namespace churnlab::testing
