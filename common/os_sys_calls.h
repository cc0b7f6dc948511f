// The one seam over the socket and epoll syscalls used by the engine and the target, so that
// tests can force any errno (EADDRNOTAVAIL at connect, EMFILE at socket, ...) without a network.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

namespace churnlab {

// A syscall's return value and, when it is -1, the errno it set (0 otherwise).
struct SysCallResult {
  int64_t rc;
  int errno_;
  bool ok() const { return rc >= 0; }
};

class OsSysCalls {
 public:
  virtual ~OsSysCalls() = default;
  // Each method is the syscall of the same name; the result carries errno instead of setting it.
  virtual SysCallResult Socket(int domain, int type, int protocol) = 0;
  virtual SysCallResult Bind(int fd, const sockaddr* addr, socklen_t len) = 0;
  virtual SysCallResult Listen(int fd, int backlog) = 0;
  virtual SysCallResult Accept4(int fd, sockaddr* addr, socklen_t* len, int flags) = 0;
  virtual SysCallResult Connect(int fd, const sockaddr* addr, socklen_t len) = 0;
  virtual SysCallResult SetSockOpt(int fd, int level, int name, const void* value,
                                   socklen_t len) = 0;
  virtual SysCallResult GetSockOpt(int fd, int level, int name, void* value, socklen_t* len) = 0;
  // send() with MSG_NOSIGNAL always added: a peer's RST must be a counted EPIPE, not a SIGPIPE.
  virtual SysCallResult Send(int fd, const void* buf, size_t len) = 0;
  virtual SysCallResult Recv(int fd, void* buf, size_t len) = 0;
  virtual SysCallResult Close(int fd) = 0;
  virtual SysCallResult EpollCreate() = 0;
  virtual SysCallResult EpollCtl(int epfd, int op, int fd, epoll_event* event) = 0;
  // epoll_pwait2(): waits at most `timeout_nanos` (nanosecond precision; < 0 waits forever).
  virtual SysCallResult EpollWait(int epfd, epoll_event* events, int max_events,
                                  int64_t timeout_nanos) = 0;
};

// The real syscalls.
class OsSysCallsImpl : public OsSysCalls {
 public:
  SysCallResult Socket(int domain, int type, int protocol) override;
  SysCallResult Bind(int fd, const sockaddr* addr, socklen_t len) override;
  SysCallResult Listen(int fd, int backlog) override;
  SysCallResult Accept4(int fd, sockaddr* addr, socklen_t* len, int flags) override;
  SysCallResult Connect(int fd, const sockaddr* addr, socklen_t len) override;
  SysCallResult SetSockOpt(int fd, int level, int name, const void* value, socklen_t len) override;
  SysCallResult GetSockOpt(int fd, int level, int name, void* value, socklen_t* len) override;
  SysCallResult Send(int fd, const void* buf, size_t len) override;
  SysCallResult Recv(int fd, void* buf, size_t len) override;
  SysCallResult Close(int fd) override;
  SysCallResult EpollCreate() override;
  SysCallResult EpollCtl(int epfd, int op, int fd, epoll_event* event) override;
  SysCallResult EpollWait(int epfd, epoll_event* events, int max_events,
                          int64_t timeout_nanos) override;
};

// The process-wide real implementation.
OsSysCalls& RealSysCalls();

}  // namespace churnlab
