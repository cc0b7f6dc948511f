#include "common/target_names.h"

#include <netdb.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace churnlab {
namespace {

bool IsHostName(absl::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
    }
  }
  // All digits and dots is an IPv4 address that did not parse, not a name.
  return !std::all_of(host.begin(), host.end(),
                      [](char c) { return absl::ascii_isdigit(c) || c == '.'; });
}

struct AddrInfoFree {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};

// A request that may outlive its caller: getaddrinfo_a keeps reading it until it completes, so
// one that cannot be cancelled is left to the resolver (a bounded leak per timed-out lookup).
struct PendingLookUp {
  std::string host;
  addrinfo hints{};
  gaicb request{};
};

}  // namespace

// Within kResolveTimeout: a resolver that does not answer fails the lookup instead of holding
// the caller (getaddrinfo_a, glibc's asynchronous getaddrinfo).
absl::StatusOr<std::vector<SocketAddress>> ResolveName(const NamedTarget& target) {
  auto pending = std::make_unique<PendingLookUp>();
  pending->host = target.host;
  pending->hints.ai_family = AF_UNSPEC;
  pending->hints.ai_socktype = SOCK_STREAM;
  pending->hints.ai_flags = AI_ADDRCONFIG;
  pending->request.ar_name = pending->host.c_str();
  pending->request.ar_request = &pending->hints;
  gaicb* list[1] = {&pending->request};
  int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, nullptr);
  if (rc == 0) {
    // On the steady clock: a wall-clock step neither ends the wait early nor stretches it.
    using Steady = std::chrono::steady_clock;
    const Steady::time_point deadline = Steady::now() + absl::ToChronoNanoseconds(kResolveTimeout);
    do {
      timespec wait = absl::ToTimespec(
          absl::FromChrono(std::max(Steady::duration::zero(), deadline - Steady::now())));
      gai_suspend(list, 1, &wait);  // returns early on a signal: the loop waits on
      rc = gai_error(&pending->request);
    } while (rc == EAI_INPROGRESS && Steady::now() < deadline);
    if (rc == EAI_INPROGRESS) {
      const int cancelled = gai_cancel(&pending->request);
      if (cancelled == EAI_ALLDONE) {
        rc = gai_error(&pending->request);  // it answered just now
      } else {
        if (cancelled != EAI_CANCELED) pending.release();  // the resolver still holds it
        return absl::UnavailableError(absl::StrCat("target ", target.host,
                                                   ": cannot resolve it: no answer within ",
                                                   absl::FormatDuration(kResolveTimeout)));
      }
    }
  }
  std::unique_ptr<addrinfo, AddrInfoFree> owned(pending->request.ar_result);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("target ", target.host, ": cannot resolve it: ", gai_strerror(rc)));
  }
  std::vector<SocketAddress> out;
  for (addrinfo* ai = owned.get(); ai != nullptr; ai = ai->ai_next) {
    absl::StatusOr<SocketAddress> a = SocketAddress::FromSockaddr(ai->ai_addr, ai->ai_addrlen);
    if (!a.ok()) continue;
    a->set_port(target.port);
    if (std::find(out.begin(), out.end(), *a) == out.end()) out.push_back(*a);
  }
  return out;
}

namespace {

int Families(const std::vector<SocketAddress>& addresses) {
  int bits = 0;
  for (const SocketAddress& a : addresses) bits |= a.family() == AF_INET ? 1 : 2;
  return bits;
}

}  // namespace

absl::StatusOr<NamedTarget> ParseNamedTarget(absl::string_view text) {
  size_t colon = text.rfind(':');
  NamedTarget out;
  uint32_t port = 0;
  if (colon == absl::string_view::npos || !IsHostName(text.substr(0, colon)) ||
      !absl::SimpleAtoi(text.substr(colon + 1), &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not ip:port, [v6]:port or host:port (a DNS name and a port 1-65535)"));
  }
  out.host = std::string(text.substr(0, colon));
  out.port = static_cast<uint16_t>(port);
  return out;
}

int RunFamily(const std::vector<SocketAddress>& ip_targets,
              const std::vector<SocketAddress>& source_ips, int first_name_families) {
  if (!ip_targets.empty()) return ip_targets.front().family();
  int both = first_name_families & (source_ips.empty() ? 3 : Families(source_ips));
  if (both == 0) both = first_name_families;
  return (both & 1) != 0 || both == 0 ? AF_INET : AF_INET6;
}

absl::StatusOr<std::vector<Resolution>> ResolveTargets(
    const std::vector<NamedTarget>& names, const std::vector<SocketAddress>& ip_targets,
    const std::vector<SocketAddress>& source_ips) {
  std::vector<Resolution> out;
  int family = AF_UNSPEC;
  for (const NamedTarget& name : names) {
    absl::StatusOr<std::vector<SocketAddress>> all = ResolveName(name);
    if (!all.ok()) return all.status();
    if (family == AF_UNSPEC) family = RunFamily(ip_targets, source_ips, Families(*all));
    Resolution r{name, {}, all->size()};
    for (const SocketAddress& a : *all) {
      if (a.family() == family && r.addresses.size() < kMaxAddressesPerName) {
        r.addresses.push_back(a);
      }
    }
    if (r.addresses.empty()) {
      return absl::UnavailableError(
          absl::StrCat("target ", name.host, ": no ", family == AF_INET ? "IPv4" : "IPv6",
                       " address (the run's family, from its other targets or source IPs)"));
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> AllowList::Entries() const {
  std::vector<std::string> out;
  for (const Cidr& block : blocks) out.push_back(block.ToString());
  out.insert(out.end(), hosts.begin(), hosts.end());
  return out;
}

absl::StatusOr<AllowList> ParseAllowList(absl::string_view text) {
  AllowList out;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    absl::StatusOr<Cidr> block = Cidr::Parse(item);
    const bool looks_like_block =
        absl::StrContains(item, '/') || absl::StrContains(item, ':') ||
        (!item.empty() && std::all_of(item.begin(), item.end(),
                                      [](char c) { return absl::ascii_isdigit(c) || c == '.'; }));
    if (block.ok()) {
      out.blocks.push_back(*block);
    } else if (looks_like_block) {
      return block.status();  // what is wrong with it as a block
    } else if (IsHostName(item)) {
      out.hosts.emplace_back(item);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", item, "' is neither an address block (10.0.0.0/8, ::1) nor a host name"));
    }
  }
  return out;
}

absl::Status CheckTargetsAllowed(const std::vector<SocketAddress>& targets,
                                 const AllowList& allowed) {
  std::vector<Cidr> blocks = allowed.blocks;
  std::vector<std::string> resolved;  // "api.example: 10.0.0.5, ..." or why not
  for (const std::string& host : allowed.hosts) {
    absl::StatusOr<std::vector<SocketAddress>> found = ResolveName(NamedTarget{host, 0});
    if (!found.ok()) {
      resolved.push_back(std::string(found.status().message()));
      continue;
    }
    std::vector<std::string> ips;
    for (const SocketAddress& a : *found) {
      blocks.push_back(*Cidr::Parse(a.IpString()));
      ips.push_back(a.IpString());
    }
    resolved.push_back(absl::StrCat(host, ": ", absl::StrJoin(ips, ", ")));
  }
  for (const SocketAddress& target : targets) {
    if (std::none_of(blocks.begin(), blocks.end(),
                     [&](const Cidr& b) { return b.Contains(target); })) {
      return absl::PermissionDeniedError(absl::StrCat(
          "target ", target.ToString(), " is outside the allowed targets ",
          absl::StrJoin(allowed.Entries(), ","),
          resolved.empty() ? "" : absl::StrCat(" (", absl::StrJoin(resolved, "; "), ")")));
    }
  }
  return absl::OkStatus();
}

}  // namespace churnlab
