// Held connections, from what the agents reported: how many were open at once (per source and
// in total, by the kernel's count and the engines'), what each cost in kernel and user memory,
// which bound comes first (fds, ports per four-tuple, memory) and what this host could hold
// with more source IPs or memory. Pure: no I/O.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "churnlab/v1/agent.pb.h"
#include "churnlab/v1/report.pb.h"
#include "churnlab/v1/telemetry.pb.h"
#include "common/engine_params.h"

namespace churnlab::analysis {

struct ConcurrencyShard {
  std::string agent;
  const v1::Hello* hello = nullptr;            // port range, sysctls (fs.file-max), kernel id
  const v1::ShardTelemetry* latest = nullptr;  // peaks, memory
  uint32_t destinations = 1;                   // the run's targets
  // How the sources bind: under `bind` and `bind-any` a port is taken for every destination
  // (one four-tuple per port), and under `bind-any` for every address too (the shard's sources
  // share one set of ports).
  BindMode bind = BindMode::kNoPort;
};

// Empty (no peak) when no shard reported a connection open. A kernel also holds the server's end
// of each connection when an observer of the run has its boot id (`observer_kernels`: a
// kernel_id up to its '/'), and every agent's does when the targets are loopback addresses.
v1::ConcurrencyReport AnalyzeConcurrency(const std::vector<ConcurrencyShard>& shards,
                                         const std::set<std::string>& observer_kernels = {},
                                         bool targets_loopback = false);
// The boot id a hello's kernel_id names ("BOOT/NETNS" -> "BOOT"); "" when it reported none.
std::string BootIdOf(const v1::Hello& hello);

}  // namespace churnlab::analysis
