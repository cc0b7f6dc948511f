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

// The cores this process may run on (its CPU affinity), at least 1.
int UsableCores();

}  // namespace churnlab
