#include "common/os_sys_calls.h"

#include <errno.h>
#include <unistd.h>

namespace churnlab {
namespace {

SysCallResult Wrap(int64_t rc) { return {rc, rc < 0 ? errno : 0}; }

}  // namespace

SysCallResult OsSysCallsImpl::Socket(int domain, int type, int protocol) {
  return Wrap(::socket(domain, type, protocol));
}
SysCallResult OsSysCallsImpl::Bind(int fd, const sockaddr* addr, socklen_t len) {
  return Wrap(::bind(fd, addr, len));
}
SysCallResult OsSysCallsImpl::Listen(int fd, int backlog) { return Wrap(::listen(fd, backlog)); }
SysCallResult OsSysCallsImpl::Accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  return Wrap(::accept4(fd, addr, len, flags));
}
SysCallResult OsSysCallsImpl::Connect(int fd, const sockaddr* addr, socklen_t len) {
  return Wrap(::connect(fd, addr, len));
}
SysCallResult OsSysCallsImpl::SetSockOpt(int fd, int level, int name, const void* value,
                                         socklen_t len) {
  return Wrap(::setsockopt(fd, level, name, value, len));
}
SysCallResult OsSysCallsImpl::GetSockOpt(int fd, int level, int name, void* value, socklen_t* len) {
  return Wrap(::getsockopt(fd, level, name, value, len));
}
SysCallResult OsSysCallsImpl::Send(int fd, const void* buf, size_t len) {
  return Wrap(::send(fd, buf, len, MSG_NOSIGNAL));
}
SysCallResult OsSysCallsImpl::Recv(int fd, void* buf, size_t len) {
  return Wrap(::recv(fd, buf, len, 0));
}
SysCallResult OsSysCallsImpl::Close(int fd) { return Wrap(::close(fd)); }
SysCallResult OsSysCallsImpl::EpollCreate() { return Wrap(::epoll_create1(EPOLL_CLOEXEC)); }
SysCallResult OsSysCallsImpl::EpollCtl(int epfd, int op, int fd, epoll_event* event) {
  return Wrap(::epoll_ctl(epfd, op, fd, event));
}
SysCallResult OsSysCallsImpl::EpollWait(int epfd, epoll_event* events, int max_events,
                                        int64_t timeout_nanos) {
  if (timeout_nanos < 0) return Wrap(::epoll_pwait2(epfd, events, max_events, nullptr, nullptr));
  timespec timeout{timeout_nanos / 1'000'000'000, timeout_nanos % 1'000'000'000};
  return Wrap(::epoll_pwait2(epfd, events, max_events, &timeout, nullptr));
}

OsSysCalls& RealSysCalls() {
  static OsSysCallsImpl impl;
  return impl;
}

}  // namespace churnlab
