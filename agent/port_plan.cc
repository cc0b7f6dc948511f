#include "agent/port_plan.h"

#include <algorithm>
#include <map>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/time_wait.h"
#include "host/host_facts.h"
#include "host/socket_census.h"
#include "host/tcp_socket_table.h"

namespace churnlab {
namespace {

// Past the kernel's own threshold, so that a port is never offered a moment before the kernel
// would take it.
constexpr double kReuseMarginSeconds = 1;

int SysctlOr(const std::map<std::string, std::string>& sysctls, const std::string& key,
             int fallback) {
  auto it = sysctls.find(key);
  int value = 0;
  return it != sysctls.end() && absl::SimpleAtoi(it->second, &value) ? value : fallback;
}

// Ports the run's sources hold toward its targets now, in any state: the four-tuples a fresh
// port would collide with. Unreadable: none (a collision is then found at connect() and the port
// set aside).
void AddHeldTowardTargets(const EngineParams& params, PortSet* out) {
  if (params.targets.empty() || params.source_ips.empty()) return;
  absl::flat_hash_set<SocketAddress> sources(params.source_ips.begin(), params.source_ips.end());
  absl::flat_hash_set<SocketAddress> targets(params.targets.begin(), params.targets.end());
  int low = 65535, high = 0;
  for (const SocketAddress& t : params.targets) {
    low = std::min(low, t.port());
    high = std::max(high, t.port());
  }
  absl::StatusOr<std::vector<TcpSocketInfo>> sockets =
      DumpTcpSocketsToPorts(params.targets.front().family(), low, high);
  if (!sockets.ok()) return;
  for (const TcpSocketInfo& s : *sockets) {
    SocketAddress local = s.local;
    local.set_port(0);
    if (sources.contains(local) && targets.contains(s.remote)) out->set(s.local.port());
  }
}

}  // namespace

absl::StatusOr<PortPlan> HostPortPlan(const EngineParams& params, bool destinations_may_change,
                                      const absl::StatusOr<RangeUse>& range_use) {
  auto [low, high] = LocalPortRange();
  if (low < 1 || high < low || high > 65535) {
    return absl::FailedPreconditionError(
        "bind mode engine: net.ipv4.ip_local_port_range cannot be read here");
  }
  PortPlan plan;
  plan.low = static_cast<uint16_t>(low);
  plan.high = static_cast<uint16_t>(high);
  auto excluded = std::make_shared<PortSet>(ReservedPortSet(ReservedPortsList()));
  // Ports bind() took anywhere on the host (listeners, other programs): the kernel's connect()
  // skips them; so does the engine. Where the kernel cannot be asked, a conflict is found at
  // bind() and that port set aside.
  if (range_use.ok() && range_use->bind_taken_known && range_use->bind_taken_ports != nullptr) {
    *excluded |= *range_use->bind_taken_ports;
  }
  AddHeldTowardTargets(params, excluded.get());
  plan.excluded = std::move(excluded);
  const std::map<std::string, std::string> sysctls = ChurnSysctls();
  auto all_loopback = [](const std::vector<SocketAddress>& addresses) {
    return !addresses.empty() &&
           std::all_of(addresses.begin(), addresses.end(),
                       [](const SocketAddress& a) { return a.is_loopback(); });
  };
  const bool loopback =
      all_loopback(params.source_ips) || (!destinations_may_change && all_loopback(params.targets));
  const int delay_ms = SysctlOr(sysctls, "net.ipv4.tcp_tw_reuse_delay", 0);
  const double reuse = ReuseDelay(SysctlOr(sysctls, "net.ipv4.tcp_tw_reuse", 0),
                                  SysctlOr(sysctls, "net.ipv4.tcp_timestamps", 0), loopback,
                                  delay_ms > 0 ? delay_ms / 1000.0 : kTwReuseDelaySeconds);
  // Reuse counts only where both ends are this kernel (its timestamps setting on both).
  const double hold = reuse > 0 && loopback ? reuse : kTimeWaitSeconds;
  plan.reuse_after = absl::Seconds(hold + kReuseMarginSeconds);
  return plan;
}

}  // namespace churnlab
