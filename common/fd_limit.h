// The process's file-descriptor limit (RLIMIT_NOFILE), raised at start: every connection an
// agent holds or a target accepts is one fd, every agent, CLI and browser a coordinator serves
// too, and distributions ship a soft limit (1,024) far below what either needs.
#pragma once

#include <cstdint>
#include <string>

namespace churnlab {

struct FdLimitChange {
  uint64_t soft_before = 0;
  uint64_t hard_before = 0;
  uint64_t soft = 0;  // after
  uint64_t hard = 0;
  uint64_t nr_open = 0;  // fs.nr_open: the most any process may have; 0 when unreadable
  // One line for stderr: "fd limit: soft 1024 -> 1048576 (hard 20000 -> 1048576, fs.nr_open)".
  std::string Describe() const;
};

// Raises the hard limit to fs.nr_open where this process may (CAP_SYS_RESOURCE, e.g. root),
// then the soft limit to the hard one. Never lowers either; a refused raise leaves it as it was.
FdLimitChange RaiseFdLimit();

// fds a load process (an engine process, a target's server process) keeps for itself beside its
// connections: epoll per thread, stdio, pipes, listeners, the observer's gRPC and netlink.
inline constexpr uint64_t kReservedFds = 64;
// Connections one process may hold under the fd limit `fd_limit`: the limit less kReservedFds, or
// half of a limit under twice that; at least 1. The one rule for the agent's engine processes,
// the target's server processes and the preflight's word on them.
uint64_t ConnectionsPerProcess(uint64_t fd_limit);
// Processes that hold `connections` at once, each at most ConnectionsPerProcess; at least 1.
uint64_t ProcessesFor(uint64_t connections, uint64_t fd_limit);

// The cores this process may run on (its CPU affinity), at least 1.
int UsableCores();

}  // namespace churnlab
