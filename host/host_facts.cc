#include "host/host_facts.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "host/process_memory.h"

namespace churnlab {
namespace {

std::string ReadProcSys(const std::string& key) {
  std::ifstream in("/proc/sys/" + absl::StrReplaceAll(key, {{".", "/"}}));
  std::string value;
  std::getline(in, value);
  return std::string(absl::StripAsciiWhitespace(value));
}

}  // namespace

std::string HostName() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

std::vector<SocketAddress> LocalAddresses() {
  std::vector<SocketAddress> all;
  std::vector<SocketAddress> loopback;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return all;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || !(a->ifa_flags & IFF_UP)) continue;
    int family = a->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    absl::StatusOr<SocketAddress> address = SocketAddress::FromSockaddr(
        a->ifa_addr, family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    if (!address.ok()) continue;
    if (family == AF_INET6) {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&v6->sin6_addr)) continue;
    }
    (address->is_loopback() ? loopback : all).push_back(*address);
  }
  freeifaddrs(list);
  return all.empty() ? loopback : all;
}

std::pair<int, int> LocalPortRange() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  int high = 0;
  in >> low >> high;
  return {low, high};
}

PortSet ReservedPortSet(absl::string_view list) {
  // The kernel writes its bitmap as sorted, disjoint spans: "8080,9000-9099".
  PortSet reserved;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> ends = absl::StrSplit(part, '-');
    uint32_t a = 0;
    uint32_t b = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(ends.first), &a)) continue;
    if (ends.second.empty()) {
      b = a;
    } else if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(ends.second), &b)) {
      continue;
    }
    for (uint32_t port = a; port <= std::min<uint32_t>(b, 65535); ++port) reserved.set(port);
  }
  return reserved;
}

uint32_t ReservedPortsIn(absl::string_view list, uint32_t low, uint32_t high) {
  PortSet reserved = ReservedPortSet(list);
  uint32_t count = 0;
  for (uint32_t port = low; port <= std::min<uint32_t>(high, 65535); ++port) {
    count += reserved.test(port);
  }
  return count;
}

std::string ReservedPortsList() { return ReadProcSys("net.ipv4.ip_local_reserved_ports"); }

std::map<std::string, std::string> ChurnSysctls() {
  std::map<std::string, std::string> out;
  for (const char* key :
       {"net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_tw_reuse_delay",
        "net.ipv4.tcp_timestamps", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_max_tw_buckets",
        "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_abort_on_overflow",
        "fs.file-max", "fs.nr_open"}) {
    std::string value = ReadProcSys(key);
    if (!value.empty()) out[key] = absl::StrReplaceAll(value, {{"\t", " "}});
  }
  return out;
}

int64_t FdLimit() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  return static_cast<int64_t>(limit.rlim_cur);
}

std::string KernelId() {
  std::string boot_id;
  std::getline(std::ifstream("/proc/sys/kernel/random/boot_id"), boot_id);
  char netns[64] = {};
  ssize_t n = readlink("/proc/self/ns/net", netns, sizeof(netns) - 1);
  if (boot_id.empty() || n <= 0) return "";
  return absl::StrCat(boot_id, "/", absl::string_view(netns, n));
}

void FillHostSettings(v1::Hello* hello) {
  auto [low, high] = LocalPortRange();
  hello->mutable_port_range()->set_low(low);
  hello->mutable_port_range()->set_high(high);
  hello->set_reserved_ports(ReservedPortsIn(ReservedPortsList(), static_cast<uint32_t>(low),
                                            static_cast<uint32_t>(high)));
  hello->clear_sysctls();
  for (const auto& [key, value] : ChurnSysctls()) (*hello->mutable_sysctls())[key] = value;
  hello->set_fd_limit(FdLimit());
  hello->set_kernel_id(KernelId());
  hello->set_mem_available_bytes(ReadHostMemory().mem_available_bytes);
}

}  // namespace churnlab
