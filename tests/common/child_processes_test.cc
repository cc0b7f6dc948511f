#include "common/child_processes.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "gtest/gtest.h"

namespace churnlab {
namespace {

pid_t ChildThat(bool stops) {
  pid_t pid = fork();
  if (pid == 0) {
    if (stops) raise(SIGSTOP);
    _exit(0);
  }
  return pid;
}

TEST(ReapOrKillTest, ReapsChildrenThatExitAndKillsAStoppedOne) {
  std::vector<pid_t> pids = {ChildThat(false), ChildThat(true), ChildThat(false)};
  ASSERT_GT(pids[1], 0);
  EXPECT_EQ(ReapOrKill(pids, absl::Milliseconds(300)), 1);
  // Every one was reaped: none is left to wait for.
  for (pid_t pid : pids) EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1) << pid;
}

TEST(ReapOrKillTest, KillsNoneWhenAllExit) {
  std::vector<pid_t> pids = {ChildThat(false), ChildThat(false)};
  EXPECT_EQ(ReapOrKill(pids, absl::Seconds(10)), 0);
}

}  // namespace
}  // namespace churnlab
