// RaiseFdLimit on this process: the soft limit ends at the hard one, never lower than before,
// and with CAP_SYS_RESOURCE the hard one reaches fs.nr_open.
#include "common/fd_limit.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace churnlab {
namespace {

// CAP_SYS_RESOURCE (bit 24) in this process's effective capabilities (/proc/self/status).
bool HasCapSysResource() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      return (std::stoull(line.substr(7), nullptr, 16) >> 24) & 1;
    }
  }
  return false;
}

TEST(FdLimitTest, RaisesTheSoftLimitToTheHardOneAndSaysSo) {
  FdLimitChange change = RaiseFdLimit();
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(change.soft, now.rlim_cur);
  EXPECT_EQ(change.hard, now.rlim_max);
  EXPECT_EQ(change.soft, change.hard);
  EXPECT_GE(change.soft, change.soft_before);
  EXPECT_GE(change.hard, change.hard_before);
  // With CAP_SYS_RESOURCE the hard limit reaches fs.nr_open; without it (root in a container
  // often lacks it) the hard limit stays where it was.
  if (HasCapSysResource() && change.nr_open > 0) {
    EXPECT_EQ(change.hard, change.nr_open);
  } else {
    EXPECT_EQ(change.hard, change.hard_before);
  }
  EXPECT_TRUE(absl::StartsWith(change.Describe(), "fd limit (RLIMIT_NOFILE): soft "))
      << change.Describe();
  // Twice is a no-op.
  FdLimitChange again = RaiseFdLimit();
  EXPECT_EQ(again.soft_before, again.soft);
  EXPECT_EQ(again.hard, change.hard);
}

// The cores of this process' CPU affinity, as the kernel lists them: narrowed to one, one.
TEST(FdLimitTest, UsableCoresAreTheAffinityMasksCores) {
  cpu_set_t all;
  CPU_ZERO(&all);
  ASSERT_EQ(sched_getaffinity(0, sizeof(all), &all), 0);
  EXPECT_EQ(UsableCores(), CPU_COUNT(&all));
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &all)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  int narrowed = UsableCores();
  ASSERT_EQ(sched_setaffinity(0, sizeof(all), &all), 0);
  EXPECT_EQ(narrowed, 1);
}

// The one rule for processes per fd limit (engine processes, the target's server processes,
// the preflight): the limit less 64, or half of a small one.
TEST(ProcessesForTest, EachProcessHoldsItsLimitLessItsOwnFds) {
  EXPECT_EQ(ConnectionsPerProcess(1024), 960u);
  EXPECT_EQ(ConnectionsPerProcess(129), 65u);
  EXPECT_EQ(ConnectionsPerProcess(128), 64u);  // half
  EXPECT_EQ(ConnectionsPerProcess(100), 50u);
  EXPECT_EQ(ConnectionsPerProcess(1), 1u);
  EXPECT_EQ(ConnectionsPerProcess(0), 1u);
  EXPECT_EQ(ProcessesFor(0, 1024), 1u);
  EXPECT_EQ(ProcessesFor(960, 1024), 1u);
  EXPECT_EQ(ProcessesFor(961, 1024), 2u);
  EXPECT_EQ(ProcessesFor(1000, 100), 20u);
}

}  // namespace
}  // namespace churnlab
