#include "common/fd_limit.h"

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace churnlab {
namespace {

uint64_t ReadNrOpen() {
  uint64_t value = 0;
  std::ifstream("/proc/sys/fs/nr_open") >> value;
  return value;
}

}  // namespace

std::string FdLimitChange::Describe() const {
  std::string out = absl::StrCat("fd limit (RLIMIT_NOFILE): soft ", soft_before);
  if (soft != soft_before) absl::StrAppend(&out, " -> ", soft);
  absl::StrAppend(&out, ", hard ", hard_before);
  if (hard != hard_before) absl::StrAppend(&out, " -> ", hard, " (fs.nr_open)");
  if (nr_open > hard) {
    absl::StrAppend(&out, "; fs.nr_open allows ", nr_open,
                    " to a process with CAP_SYS_RESOURCE (ulimit -Hn)");
  }
  return out;
}

FdLimitChange RaiseFdLimit() {
  FdLimitChange change;
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  change.soft_before = limit.rlim_cur;
  change.hard_before = limit.rlim_max;
  change.nr_open = ReadNrOpen();
  if (change.nr_open > limit.rlim_max) {
    rlimit raised{change.nr_open, change.nr_open};
    // EPERM without CAP_SYS_RESOURCE: the hard limit stays, the soft one still rises below.
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised{limit.rlim_max, limit.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  getrlimit(RLIMIT_NOFILE, &limit);
  change.soft = limit.rlim_cur;
  change.hard = limit.rlim_max;
  return change;
}

uint64_t ConnectionsPerProcess(uint64_t fd_limit) {
  uint64_t per_process = fd_limit > 2 * kReservedFds ? fd_limit - kReservedFds : fd_limit / 2;
  return std::max<uint64_t>(1, per_process);
}

uint64_t ProcessesFor(uint64_t connections, uint64_t fd_limit) {
  const uint64_t per_process = ConnectionsPerProcess(fd_limit);
  return std::max<uint64_t>(1, connections / per_process + (connections % per_process != 0));
}

int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

}  // namespace churnlab
