// Starts a project binary as a child process for integration tests, with stdout and stderr
// captured to a file, and stops it with a signal.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace churnlab::testing {

// build/bin/<name>, found next to the running test binary.
std::string BinaryPath(const std::string& name);

class ChildProcess {
 public:
  // Runs argv[0] with argv; output goes to a temporary file read by Output().
  static absl::StatusOr<ChildProcess> Start(const std::vector<std::string>& argv);
  ChildProcess(ChildProcess&& other) noexcept;
  ~ChildProcess();  // SIGKILLs a child still running

  // Sends `signal` and waits for the exit; returns the exit code (128+N if killed by signal N).
  int Stop(int signal);
  // Waits up to `timeout` for the exit; DEADLINE_EXCEEDED if it is still running.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  std::string Output() const;
  pid_t pid() const { return pid_; }

 private:
  ChildProcess(pid_t pid, std::string output_path)
      : pid_(pid), output_path_(std::move(output_path)) {}
  pid_t pid_ = -1;
  std::string output_path_;
};

// Runs a command to completion (at most `timeout`) and returns {exit code, output}.
struct CommandResult {
  int exit_code;
  std::string output;
};
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout = absl::Seconds(60));

// Reads a file that another process writes, waiting up to `timeout` for it to appear.
absl::StatusOr<std::string> WaitForFile(const std::string& path, absl::Duration timeout);

// A fresh empty directory under /tmp.
std::string MakeTempDir();

}  // namespace churnlab::testing
