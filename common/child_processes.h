// Ending child processes in bounded time: a child that was told to exit (EOF on its pipe,
// SIGTERM) but is stopped (SIGSTOP) or wedged would hold up a plain waitpid() forever.
#pragma once

#include <sys/types.h>

#include <span>

#include "absl/time/time.h"

namespace churnlab {

// Waits up to `grace` for every one of `pids` to exit, then kills the rest with SIGKILL (which
// ends a stopped process too) and reaps them. Returns how many had to be killed.
int ReapOrKill(std::span<const pid_t> pids, absl::Duration grace);

}  // namespace churnlab
