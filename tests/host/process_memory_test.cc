#include "host/process_memory.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "host/proc_file.h"

namespace churnlab {
namespace {

// A read() that fails after the open() succeeded, as a /proc/PID file's does (ESRCH) when its
// process exits in between: a directory opens and then fails its read() (EISDIR), every time.
// Read through a std::istreambuf_iterator this threw std::ios_base::failure.
TEST(ProcFileTest, AReadThatFailsAfterTheOpenIsAnEmptyText) {
  EXPECT_EQ(ReadProcFile("/proc/self"), "");
  EXPECT_EQ(ReadProcFile("/proc/no-such-file"), "");
  EXPECT_NE(ReadProcFile("/proc/self/stat").find(std::to_string(getpid()) + " ("),
            std::string::npos);
}

// Forks children and reaps them as fast as it can until it goes out of scope.
class ChildChurn {
 public:
  ChildChurn()
      : thread_([this] {
          while (!stop_.load()) {
            pid_t child = fork();
            if (child == 0) _exit(0);
            if (child > 0) waitpid(child, nullptr, 0);
          }
        }) {}
  ~ChildChurn() {
    stop_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The agent reads its children's memory on every telemetry beat by walking /proc; a process
// that exited during the walk ended an agent in a fresh clone's test run (the error above). Here
// children come and go as fast as they can while the walk runs (before the fix, 5 of 6 such runs
// threw within 4 s; the deterministic check is ProcFileTest above).
TEST(ProcessMemoryTest, ChildrenThatExitDuringTheWalkDoNotEndIt) {
  ChildChurn churn;
  for (int walk = 0; walk < 500; ++walk) {
    ProcessMemory m = SelfAndChildrenMemory();
    ASSERT_GE(m.processes, 1u);
    ASSERT_GT(m.rss_bytes, 0u);
  }
}

}  // namespace
}  // namespace churnlab
