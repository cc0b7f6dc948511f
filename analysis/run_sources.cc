#include "analysis/run_sources.h"

#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace churnlab::analysis {

RunSources::RunSources(const RunShape& shape)
    : family_(shape.family),
      excluded_(shape.excluded_sources.begin(), shape.excluded_sources.end()) {}

bool RunSources::OfFamily(const SocketAddress& ip) const {
  return family_ == AF_UNSPEC || ip.family() == family_;
}

std::vector<SocketAddress> RunSources::Offered(std::span<const SocketAddress> sources) const {
  std::vector<SocketAddress> out;
  for (const SocketAddress& ip : sources) {
    if (!excluded_.contains(ip) && OfFamily(ip)) out.push_back(ip);
  }
  return out;
}

std::string RunSources::WhyNone(std::span<const SocketAddress> sources) const {
  if (!Offered(sources).empty()) return "";
  const bool any_of_family = std::any_of(sources.begin(), sources.end(),
                                         [&](const SocketAddress& ip) { return OfFamily(ip); });
  if (!any_of_family && !sources.empty()) {
    return absl::StrCat("offers no source IP of the targets' family (",
                        family_ == AF_INET6 ? "IPv6" : "IPv4", ")");
  }
  return "offers no source IP (that the spec does not exclude)";
}

}  // namespace churnlab::analysis
