// Servers take SIGINT/SIGTERM with sigwait() on one thread, so no worker thread is interrupted.
#pragma once

#include <signal.h>

namespace churnlab {

// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts afterwards) and
// returns the set, for sigwait()/sigtimedwait(). Call before starting any thread.
inline sigset_t BlockTerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

}  // namespace churnlab
