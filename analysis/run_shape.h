// The facts the analysis works from: what each agent reported about its host (its hello) and
// what it was asked to do, and the spec's choices parsed once into enums.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "churnlab/v1/agent.pb.h"
#include "churnlab/v1/spec.pb.h"
#include "churnlab/v1/telemetry.pb.h"
#include "common/engine_params.h"
#include "common/net_address.h"
#include "common/target_names.h"

namespace churnlab::analysis {

// One agent's part of a run.
struct ShardFacts {
  const v1::Hello* hello = nullptr;        // never null; its name is the agent's
  std::span<const SocketAddress> sources;  // empty under bind mode none (the kernel picks)
  double rate = 0;                         // its share, new connections/s (open model)
  int64_t in_flight = 0;                   // max_in_flight (open model) or concurrency
  // Known once it ran: ports each source ("auto" too) held toward the targets before the first
  // connection, and the ports of the range any socket on the host held then.
  std::map<std::string, uint64_t> taken_at_start = {};
  std::optional<v1::PortsAtStart> range_at_start = std::nullopt;
  // Of taken_at_start, the ports bind() took (range_at_start's bind_taken counts them too).
  std::map<std::string, uint64_t> bind_taken_at_start = {};
  // Known once it ran: its destinations, every address a target name resolved to on it counted
  // (IP targets once each). 0 until then: one per spec target.
  uint32_t destinations = 0;
};

// The spec as the analysis and the scheduler need it, its strings parsed once (ShapeOf): the
// rest passes this on rather than the spec's text.
struct RunShape {
  ClosePolicy close = ClosePolicy::kClientFin;
  // How sources are bound; BindReservesPort(bind): bind() takes a port for every destination.
  BindMode bind = BindMode::kNoPort;
  std::vector<SocketAddress> targets;      // the IP targets
  std::vector<NamedTarget> named_targets;  // the targets by host name, resolved by agents
  // The IP targets' family (validation keeps them to one); AF_UNSPEC when there are none.
  int family = AF_UNSPEC;
  bool all_targets_loopback = false;
  double duration_s = 0;
  std::vector<SocketAddress> wanted_sources;    // spec.source_ips
  std::vector<SocketAddress> excluded_sources;  // spec.exclude_source_ips
};

// Unknown strings read as the defaults (the spec was validated before it got here).
RunShape ShapeOf(const v1::RunSpec& spec);

// A sysctl's value from a hello, if it reported one.
std::optional<std::string> Sysctl(const v1::Hello& hello, const std::string& key);
// The same as an integer; nullopt when absent or not a number.
std::optional<int64_t> SysctlInt(const v1::Hello& hello, const std::string& key);

// Ports of the hello's ip_local_port_range that connect() may choose: the range less its
// reserved_ports (the kernel never picks those); 0 when it reported no range.
uint64_t PortCount(const v1::Hello& hello);
// Ports of the range connect() could not give `ip` toward the targets when the run started, each
// once: those it already held toward them, and where the kernel was asked, every port bind()
// took on the host (any address; connect() skips those for every destination).
uint64_t UnusableAtStart(const ShardFacts& shard, const std::string& ip);

}  // namespace churnlab::analysis
