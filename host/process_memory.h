// Memory figures for the held-connection report: what this process and its children (an
// agent's engine processes) hold in user space, and the host kernel's slab and available memory.
#pragma once

#include <cstdint>

namespace churnlab {

struct ProcessMemory {
  uint64_t pss_bytes = 0;  // proportional set size: shared pages divided among their sharers
  uint64_t rss_bytes = 0;  // resident set size: shared pages counted once per process
  uint32_t processes = 0;
};
// This process and its direct children (/proc/PID/smaps_rollup, /proc/PID/status).
ProcessMemory SelfAndChildrenMemory();

struct HostMemory {
  int64_t slab_bytes = 0;  // /proc/meminfo Slab
  uint64_t mem_available_bytes = 0;
};
HostMemory ReadHostMemory();

}  // namespace churnlab
