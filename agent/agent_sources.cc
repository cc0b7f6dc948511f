#include "agent/agent_sources.h"

#include "absl/strings/str_cat.h"
#include "common/source_prefix.h"
#include "host/host_facts.h"

namespace churnlab {
namespace {

// This host's addresses inside `cidrs`; INVALID_ARGUMENT naming the flag when the list is
// malformed or no address is inside it.
absl::StatusOr<std::vector<SocketAddress>> LocalAddressesIn(const std::string& cidrs) {
  absl::StatusOr<std::vector<Cidr>> parsed = ParseCidrList(cidrs);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--source-cidrs: ", parsed.status().message()));
  }
  std::vector<SocketAddress> inside;
  for (const SocketAddress& ip : LocalAddresses()) {
    for (const Cidr& cidr : *parsed) {
      if (cidr.Contains(ip)) {
        inside.push_back(ip);
        break;
      }
    }
  }
  if (inside.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--source-cidrs=", cidrs, ": no address of this host is inside"));
  }
  return inside;
}

// The first --source-count addresses of --source-prefix, each one routed to this host. Every
// address is asked for, not just the first: a `local` route may cover only part of the prefix.
absl::StatusOr<std::vector<SocketAddress>> PrefixAddresses(const SourceFlags& f) {
  std::string flag = absl::StrCat("--source-prefix=", f.source_prefix);
  absl::StatusOr<Cidr> prefix = Cidr::Parse(f.source_prefix);
  if (!prefix.ok())
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", prefix.status().message()));
  absl::StatusOr<std::vector<SocketAddress>> ips = ExpandSourcePrefix(*prefix, f.source_count);
  if (!ips.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " --source-count=", f.source_count, ": ", ips.status().message()));
  }
  for (const SocketAddress& ip : *ips) {
    if (absl::Status local = CheckAddressIsLocal(ip); !local.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          flag, ": ", local.message(), "; route the prefix to this host first, e.g. `ip ",
          prefix->base().family() == AF_INET6 ? "-6 " : "", "route add local ", prefix->ToString(),
          " dev lo`"));
    }
  }
  return ips;
}

// Which of the mutually exclusive ways to give sources the flags use; INVALID_ARGUMENT when more
// than one, or --source-count without --source-prefix.
absl::Status CheckOneWay(const SourceFlags& f) {
  int ways = !f.source_ips.empty() + !f.source_cidrs.empty() + !f.source_prefix.empty();
  if (ways > 1) {
    return absl::InvalidArgumentError(
        "--source-ips, --source-cidrs and --source-prefix: give one of them");
  }
  if (f.source_prefix.empty() && f.source_count != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--source-count=", f.source_count, ": only with --source-prefix"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<SocketAddress>> ResolveSources(const SourceFlags& f) {
  if (absl::Status one = CheckOneWay(f); !one.ok()) return one;
  if (!f.source_prefix.empty()) return PrefixAddresses(f);
  if (!f.source_cidrs.empty()) return LocalAddressesIn(f.source_cidrs);
  if (f.source_ips.empty()) return LocalAddresses();
  absl::StatusOr<std::vector<SocketAddress>> parsed = ParseIpList(f.source_ips);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--source-ips: ", parsed.status().message()));
  }
  for (const SocketAddress& ip : *parsed) {
    if (absl::Status local = CheckAddressIsLocal(ip); !local.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--source-ips: ", local.message()));
    }
  }
  return parsed;
}

}  // namespace churnlab
