#include "analysis/run_sources.h"

#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/net_address.h"

namespace churnlab::analysis {

RunSources::RunSources(const RunShape& shape, const v1::RunSpec& spec)
    : family_(shape.family),
      excluded_(spec.exclude_source_ips().begin(), spec.exclude_source_ips().end()) {}

bool RunSources::OfFamily(const std::string& ip) const {
  if (family_ == AF_UNSPEC) return true;
  absl::StatusOr<SocketAddress> address = SocketAddress::ParseIp(ip);
  return address.ok() && address->family() == family_;
}

std::vector<std::string> RunSources::Offered(const v1::Hello& hello) const {
  std::vector<std::string> out;
  for (const std::string& ip : hello.source_ips()) {
    if (excluded_.count(ip) == 0 && OfFamily(ip)) out.push_back(ip);
  }
  return out;
}

std::string RunSources::WhyNone(const v1::Hello& hello) const {
  if (!Offered(hello).empty()) return "";
  const bool any_of_family = std::any_of(hello.source_ips().begin(), hello.source_ips().end(),
                                         [&](const std::string& ip) { return OfFamily(ip); });
  if (!any_of_family && hello.source_ips_size() > 0) {
    return absl::StrCat("offers no source IP of the targets' family (",
                        family_ == AF_INET6 ? "IPv6" : "IPv4", ")");
  }
  return "offers no source IP (that the spec does not exclude)";
}

}  // namespace churnlab::analysis
