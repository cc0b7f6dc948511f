#include "common/child_processes.h"

#include <signal.h>
#include <sys/wait.h>
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

// Waits until `pid` has exited or stopped, leaving it as it is for ReapOrKill (a busy machine
// may not run a new child within ReapOrKill's grace).
void AwaitExitOrStop(pid_t pid) {
  siginfo_t info{};
  EXPECT_EQ(waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WSTOPPED | WNOWAIT), 0) << pid;
}

TEST(ReapOrKillTest, ReapsChildrenThatExitAndKillsAStoppedOne) {
  std::vector<pid_t> pids = {ChildThat(false), ChildThat(true), ChildThat(false)};
  ASSERT_GT(pids[1], 0);
  for (pid_t pid : pids) AwaitExitOrStop(pid);
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
