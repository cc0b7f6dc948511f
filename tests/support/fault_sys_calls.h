// Test doubles for the syscall and clock seams: real syscalls except where a test forces an
// errno, and simulated time that jumps forward whenever the engine would sleep, so a
// "15-second" run takes milliseconds and gives the same counts every time.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/net_address.h"
#include "common/os_sys_calls.h"

namespace churnlab::testing {

class FakeClock final : public Clock {
 public:
  int64_t NowNanos() override { return now_.load(); }
  void Advance(int64_t nanos) { now_.fetch_add(nanos); }

 private:
  std::atomic<int64_t> now_{1'000'000'000};
};

class FaultSysCalls final : public OsSysCallsImpl {
 public:
  explicit FaultSysCalls(FakeClock& clock) : clock_(clock) {}
  ~FaultSysCalls() override;

  int socket_errno = 0;   // socket() fails with this
  int bind_errno = 0;     // bind() fails with this
  int connect_errno = 0;  // connect() fails at once with this
  // connect() says EINPROGRESS on a descriptor that never becomes ready (a pipe's read end),
  // like a SYN into a black hole.
  bool connect_hangs = false;
  // Every connect() takes this long on the clock (the kernel searching a full port range).
  int64_t connect_nanos = 0;
  // The connect() with this 1-based number first advances the clock by stall_nanos (the process
  // stopped by SIGSTOP, or starved of CPU, just before the call).
  uint64_t stall_at_connect = 0;
  int64_t stall_nanos = 0;
  // The same for the socket() call with this 1-based number: stopped before the connect().
  uint64_t stall_at_socket = 0;
  uint64_t sockets = 0;  // socket() calls made
  // Read after the run: connect() calls made, and the clock when the last one was entered.
  uint64_t connects = 0;
  int64_t last_connect_at = 0;
  std::atomic<uint64_t> binds{0};  // bind() calls made
  std::string last_bind;           // the last one's address, "0.0.0.0:0" (one engine thread)
  std::vector<int> bound_ports;    // every bind()'s port, in order (one engine thread)
  // The connect() with this 1-based number fails with EADDRNOTAVAIL, no syscall made: a
  // four-tuple the kernel still holds.
  uint64_t refuse_connect_at = 0;
  // epoll_wait() waits as the kernel's does: for a run on the real clock against a real peer.
  bool real_waits = false;

  SysCallResult Socket(int domain, int type, int protocol) override;
  SysCallResult Bind(int fd, const sockaddr* addr, socklen_t len) override;
  SysCallResult Connect(int fd, const sockaddr* addr, socklen_t len) override;
  SysCallResult SetSockOpt(int fd, int level, int name, const void* value, socklen_t len) override;
  // Never sleeps: polls, and when nothing is ready advances the clock by the whole timeout.
  SysCallResult EpollWait(int epfd, epoll_event* events, int max_events,
                          int64_t timeout_nanos) override;

 private:
  FakeClock& clock_;
  std::vector<int> pipe_writers_;
};

}  // namespace churnlab::testing
