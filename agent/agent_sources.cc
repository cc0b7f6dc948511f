#include "agent/agent_sources.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/source_prefix.h"
#include "host/host_facts.h"
#include "host/local_prefixes.h"

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

// The first `count` addresses of `prefix`, each one routed to this host. Every address is asked
// for, not just the first: a `local` route may cover only part of the prefix. `flag` names where
// the prefix came from in errors.
absl::StatusOr<std::vector<SocketAddress>> PrefixAddresses(const std::string& flag,
                                                           const Cidr& prefix, int64_t count) {
  absl::StatusOr<std::vector<SocketAddress>> ips = ExpandSourcePrefix(prefix, count);
  if (!ips.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " --source-count=", count, ": ", ips.status().message()));
  }
  for (const SocketAddress& ip : *ips) {
    if (absl::Status local = CheckAddressIsLocal(ip); !local.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          flag, ": ", local.message(), "; route the prefix to this host first, e.g. `ip ",
          prefix.base().family() == AF_INET6 ? "-6 " : "", "route add local ", prefix.ToString(),
          " dev lo`"));
    }
  }
  return ips;
}

// The one prefix inside --source-prefix-within that this host routes `local`.
absl::StatusOr<Cidr> PrefixWithin(const std::string& flag, const std::string& block_text) {
  absl::StatusOr<Cidr> block = Cidr::Parse(block_text);
  if (!block.ok())
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", block.status().message()));
  std::vector<Cidr> inside;
  for (const Cidr& prefix : LocalIpv6Prefixes()) {
    if (prefix.prefix_bits() >= block->prefix_bits() && block->Contains(prefix.base())) {
      inside.push_back(prefix);
    }
  }
  if (inside.size() != 1) {
    std::string found;
    for (const Cidr& prefix : inside)
      absl::StrAppend(&found, found.empty() ? "" : ",", prefix.ToString());
    return absl::FailedPreconditionError(absl::StrCat(
        flag, ": this host routes ", inside.empty() ? "no prefix" : found,
        " local inside it, not exactly one (`ip -6 route show table local type local dev lo`)"));
  }
  return inside[0];
}

absl::StatusOr<std::vector<SocketAddress>> PrefixSources(const SourceFlags& f) {
  if (!f.source_prefix_within.empty()) {
    std::string flag = absl::StrCat("--source-prefix-within=", f.source_prefix_within);
    absl::StatusOr<Cidr> prefix = PrefixWithin(flag, f.source_prefix_within);
    if (!prefix.ok()) return prefix.status();
    return PrefixAddresses(absl::StrCat(flag, " (found ", prefix->ToString(), ")"), *prefix,
                           f.source_count);
  }
  std::string flag = absl::StrCat("--source-prefix=", f.source_prefix);
  absl::StatusOr<Cidr> prefix = Cidr::Parse(f.source_prefix);
  if (!prefix.ok())
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", prefix.status().message()));
  return PrefixAddresses(flag, *prefix, f.source_count);
}

// Which of the mutually exclusive ways to give sources the flags use; INVALID_ARGUMENT when more
// than one, or --source-count without --source-prefix.
absl::Status CheckOneWay(const SourceFlags& f) {
  int ways = !f.source_ips.empty() + !f.source_cidrs.empty() + !f.source_prefix.empty() +
             !f.source_prefix_within.empty();
  if (ways > 1) {
    return absl::InvalidArgumentError(
        "--source-ips, --source-cidrs, --source-prefix and --source-prefix-within: give one");
  }
  if (f.source_prefix.empty() && f.source_prefix_within.empty() && f.source_count != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--source-count=", f.source_count,
                     ": only with --source-prefix or --source-prefix-within"));
  }
  return absl::OkStatus();
}

// A source a connection can come from: no wildcard, multicast or broadcast address.
absl::Status CheckUnicast(const SocketAddress& ip) {
  for (const char* block :
       {"0.0.0.0/32", "224.0.0.0/4", "255.255.255.255/32", "::/128", "ff00::/8"}) {
    if (Cidr::Parse(block)->Contains(ip)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--source-ips: ", ip.IpString(), " is no unicast address (in ", block,
                       "): a connection's source is one host's address"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<SocketAddress>> ResolveSources(const SourceFlags& f) {
  if (absl::Status one = CheckOneWay(f); !one.ok()) return one;
  if (!f.source_prefix.empty() || !f.source_prefix_within.empty()) return PrefixSources(f);
  if (!f.source_cidrs.empty()) return LocalAddressesIn(f.source_cidrs);
  if (f.source_ips.empty()) return LocalAddresses();
  absl::StatusOr<std::vector<SocketAddress>> parsed = ParseIpList(f.source_ips);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--source-ips: ", parsed.status().message()));
  }
  std::set<std::string> seen;
  for (const SocketAddress& ip : *parsed) {
    // Listed twice, an IP would count twice in every budget; its ports are there once.
    if (!seen.insert(ip.IpString()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--source-ips: ", ip.IpString(), " is listed twice"));
    }
    if (absl::Status unicast = CheckUnicast(ip); !unicast.ok()) return unicast;
    if (absl::Status local = CheckAddressIsLocal(ip); !local.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--source-ips: ", local.message()));
    }
  }
  return parsed;
}

}  // namespace churnlab
