#include "tests/support/fault_sys_calls.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

namespace churnlab::testing {

FaultSysCalls::~FaultSysCalls() {
  for (int fd : pipe_writers_) close(fd);
}

SysCallResult FaultSysCalls::Socket(int domain, int type, int protocol) {
  if (++sockets == stall_at_socket) clock_.Advance(stall_nanos);
  if (socket_errno != 0) return {-1, socket_errno};
  if (connect_hangs) {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {-1, errno};
    // The write end stays open, or the read end would report EPOLLHUP.
    pipe_writers_.push_back(fds[1]);
    return {fds[0], 0};
  }
  return OsSysCallsImpl::Socket(domain, type, protocol);
}

SysCallResult FaultSysCalls::Bind(int fd, const sockaddr* addr, socklen_t len) {
  ++binds;
  absl::StatusOr<SocketAddress> bound = SocketAddress::FromSockaddr(addr, len);
  last_bind = bound.ok() ? bound->ToString() : "?";
  if (bound.ok()) bound_ports.push_back(bound->port());
  if (bind_errno != 0) return {-1, bind_errno};
  if (connect_hangs) return {0, 0};
  return OsSysCallsImpl::Bind(fd, addr, len);
}

SysCallResult FaultSysCalls::Connect(int fd, const sockaddr* addr, socklen_t len) {
  if (++connects == stall_at_connect) clock_.Advance(stall_nanos);
  last_connect_at = clock_.NowNanos();
  clock_.Advance(connect_nanos);
  if (connect_errno != 0) return {-1, connect_errno};
  if (connects == refuse_connect_at) return {-1, EADDRNOTAVAIL};
  if (connect_hangs) return {-1, EINPROGRESS};
  return OsSysCallsImpl::Connect(fd, addr, len);
}

SysCallResult FaultSysCalls::SetSockOpt(int fd, int level, int name, const void* value,
                                        socklen_t len) {
  if (connect_hangs) return {0, 0};  // a pipe has no socket options
  return OsSysCallsImpl::SetSockOpt(fd, level, name, value, len);
}

SysCallResult FaultSysCalls::EpollWait(int epfd, epoll_event* events, int max_events,
                                       int64_t timeout_nanos) {
  if (real_waits) return OsSysCallsImpl::EpollWait(epfd, events, max_events, timeout_nanos);
  SysCallResult r = OsSysCallsImpl::EpollWait(epfd, events, max_events, 0);
  if (r.rc == 0 && timeout_nanos > 0) clock_.Advance(timeout_nanos);
  return r;
}

}  // namespace churnlab::testing
