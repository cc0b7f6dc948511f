#include "agent/port_plan.h"

#include <sys/socket.h>

#include <algorithm>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "host/host_facts.h"
#include "host/socket_census.h"
#include "host/tcp_socket_table.h"

namespace churnlab {
namespace {

// The shard's sources and targets, to tell its own earlier sockets from others'.
struct Ends {
  absl::flat_hash_set<SocketAddress> sources;
  absl::flat_hash_set<SocketAddress> targets;
  // A socket from one of the sources to one of the targets.
  bool Own(const TcpSocketInfo& s) const {
    SocketAddress local = s.local;
    local.set_port(0);
    return sources.contains(local) && targets.contains(s.remote);
  }
};

// Ports the run's sources hold toward its targets now: the four-tuples a fresh port would
// collide with. In TIME_WAIT into `time_wait` (free once it ends), in any other state into
// `held`. Unreadable: none (a collision is then found at connect() and the port set aside).
void AddHeldTowardTargets(const EngineParams& params, const Ends& ends, PortSet* held,
                          PortSet* time_wait) {
  if (params.targets.empty() || params.source_ips.empty()) return;
  int low = 65535, high = 0;
  for (const SocketAddress& t : params.targets) {
    low = std::min(low, t.port());
    high = std::max(high, t.port());
  }
  absl::StatusOr<std::vector<TcpSocketInfo>> sockets =
      DumpTcpSocketsToPorts(params.targets.front().family(), low, high);
  if (!sockets.ok()) return;
  for (const TcpSocketInfo& s : *sockets) {
    if (ends.Own(s)) (s.state == TcpState::kTimeWait ? time_wait : held)->set(s.local.port());
  }
}

// Of `time_wait`'s ports, those no socket but the shard's own TIME_WAITs holds, in either family:
// bind() took them (the engine's explicit ports), but once the TIME_WAITs end they are free.
// Unreadable: none.
PortSet OnlyOwnTimeWait(const PortSet& time_wait, const Ends& ends) {
  int low = 65535, high = 0;
  for (int port = 1; port < 65536; ++port) {
    if (!time_wait.test(port)) continue;
    low = std::min(low, port);
    high = std::max(high, port);
  }
  PortSet only = time_wait;
  for (int family : {AF_INET, AF_INET6}) {
    absl::StatusOr<std::vector<TcpSocketInfo>> sockets = DumpTcpSocketsFromPorts(family, low, high);
    if (!sockets.ok()) return PortSet();
    for (const TcpSocketInfo& s : *sockets) {
      if (s.state != TcpState::kTimeWait || !ends.Own(s)) only.reset(s.local.port());
    }
  }
  return only;
}

}  // namespace

absl::StatusOr<PortPlan> HostPortPlan(const EngineParams& params,
                                      const absl::StatusOr<RangeUse>& range_use) {
  auto [low, high] = LocalPortRange();
  if (low < 1 || high < low || high > 65535) {
    return absl::FailedPreconditionError(
        "bind mode engine: net.ipv4.ip_local_port_range cannot be read here");
  }
  PortPlan plan;
  plan.low = static_cast<uint16_t>(low);
  plan.high = static_cast<uint16_t>(high);
  const PortSet reserved = ReservedPortSet(ReservedPortsList());
  auto excluded = std::make_shared<PortSet>(reserved);
  // Ports bind() took anywhere on the host (listeners, other programs): the kernel's connect()
  // skips them; so does the engine. Where the kernel cannot be asked, a conflict is found at
  // bind() and that port set aside.
  if (range_use.ok() && range_use->bind_taken_known && range_use->bind_taken_ports != nullptr) {
    *excluded |= *range_use->bind_taken_ports;
  }
  // An earlier run's TIME_WAITs toward the targets: their ports wait them out (bind() took them,
  // so the census above has them, but nothing else holds them); any other holder excludes a port.
  const Ends ends{{params.source_ips.begin(), params.source_ips.end()},
                  {params.targets.begin(), params.targets.end()}};
  auto time_wait = std::make_shared<PortSet>();
  AddHeldTowardTargets(params, ends, excluded.get(), time_wait.get());
  if (time_wait->any()) {
    *time_wait = OnlyOwnTimeWait(*time_wait, ends) & ~reserved;
    *excluded &= ~*time_wait;
  }
  plan.excluded = std::move(excluded);
  if (time_wait->any()) plan.time_wait = std::move(time_wait);
  // reuse_after and time_wait_left keep their whole TIME_WAIT: tcp_tw_reuse does not apply to a
  // port the caller bound (it acts in connect()'s own port search), and a TIME_WAIT the engine
  // can take over (TCP timestamps) it learns of connection by connection (EngineWorker).
  return plan;
}

}  // namespace churnlab
