#include "common/child_processes.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>
#include <vector>

namespace churnlab {

int ReapOrKill(std::span<const pid_t> pids, absl::Duration grace) {
  std::vector<pid_t> left;
  for (pid_t pid : pids) {
    if (pid > 0) left.push_back(pid);
  }
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(grace);
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    std::erase_if(left, [](pid_t pid) {
      pid_t r = waitpid(pid, nullptr, WNOHANG);
      return r == pid || (r < 0 && errno == ECHILD);
    });
    if (!left.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (pid_t pid : left) kill(pid, SIGKILL);
  for (pid_t pid : left) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  return static_cast<int>(left.size());
}

}  // namespace churnlab
