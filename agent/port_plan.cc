#include "agent/port_plan.h"

#include <algorithm>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/time_wait.h"
#include "host/host_facts.h"
#include "host/socket_census.h"

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

}  // namespace

absl::StatusOr<PortPlan> HostPortPlan(const EngineParams& params) {
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
  if (absl::StatusOr<RangeUse> use = TakeRangeUse(low, high);
      use.ok() && use->bind_taken_known && use->bind_taken_ports != nullptr) {
    *excluded |= *use->bind_taken_ports;
  }
  plan.excluded = std::move(excluded);
  const std::map<std::string, std::string> sysctls = ChurnSysctls();
  const bool loopback = std::all_of(params.targets.begin(), params.targets.end(),
                                    [](const SocketAddress& t) { return t.is_loopback(); }) ||
                        std::all_of(params.source_ips.begin(), params.source_ips.end(),
                                    [](const SocketAddress& s) { return s.is_loopback(); });
  const int delay_ms = SysctlOr(sysctls, "net.ipv4.tcp_tw_reuse_delay", 0);
  const double reuse = ReuseDelay(SysctlOr(sysctls, "net.ipv4.tcp_tw_reuse", 0),
                                  SysctlOr(sysctls, "net.ipv4.tcp_timestamps", 0), loopback,
                                  delay_ms > 0 ? delay_ms / 1000.0 : kTwReuseDelaySeconds);
  const double hold = reuse > 0 ? reuse : kTimeWaitSeconds;
  plan.reuse_after = absl::Seconds(hold + kReuseMarginSeconds);
  return plan;
}

}  // namespace churnlab
