#include "common/local_route.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace churnlab {
namespace {

// One RTM_GETROUTE request for a single destination, as `ip route get ADDRESS` sends it.
struct RouteRequest {
  nlmsghdr header;
  rtmsg route;
  char attributes[64];
};

RouteRequest MakeRequest(const SocketAddress& ip) {
  RouteRequest req;
  memset(&req, 0, sizeof(req));
  const bool v4 = ip.family() == AF_INET;
  const void* bytes =
      v4 ? static_cast<const void*>(
               &reinterpret_cast<const sockaddr_in*>(ip.sockaddr_ptr())->sin_addr)
         : static_cast<const void*>(
               &reinterpret_cast<const sockaddr_in6*>(ip.sockaddr_ptr())->sin6_addr);
  const int size = v4 ? 4 : 16;
  req.route.rtm_family = static_cast<unsigned char>(ip.family());
  req.route.rtm_dst_len = static_cast<unsigned char>(size * 8);
  auto* dst = reinterpret_cast<rtattr*>(req.attributes);
  dst->rta_type = RTA_DST;
  dst->rta_len = static_cast<unsigned short>(RTA_LENGTH(size));
  memcpy(RTA_DATA(dst), bytes, size);
  req.header.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg)) + RTA_ALIGN(dst->rta_len);
  req.header.nlmsg_type = RTM_GETROUTE;
  req.header.nlmsg_flags = NLM_F_REQUEST;
  req.header.nlmsg_seq = 1;
  return req;
}

// The route type in the kernel's answer, or the errno it answered with as a negative number.
absl::StatusOr<int> RouteType(int fd, const SocketAddress& ip) {
  RouteRequest req = MakeRequest(ip);
  if (::send(fd, &req, req.header.nlmsg_len, 0) < 0) {
    return absl::ErrnoToStatus(errno, "rtnetlink send");
  }
  alignas(nlmsghdr) char answer[8192];
  ssize_t n = ::recv(fd, answer, sizeof(answer), 0);
  if (n < 0) return absl::ErrnoToStatus(errno, "rtnetlink recv");
  auto* header = reinterpret_cast<nlmsghdr*>(answer);
  if (!NLMSG_OK(header, static_cast<unsigned>(n))) {
    return absl::InternalError("rtnetlink: truncated answer");
  }
  if (header->nlmsg_type == NLMSG_ERROR) {
    return reinterpret_cast<nlmsgerr*>(NLMSG_DATA(header))->error;
  }
  if (header->nlmsg_type != RTM_NEWROUTE) {
    return absl::InternalError(absl::StrCat("rtnetlink: unexpected answer ", header->nlmsg_type));
  }
  return reinterpret_cast<rtmsg*>(NLMSG_DATA(header))->rtm_type;
}

}  // namespace

absl::StatusOr<bool> IsRoutedLocal(const SocketAddress& ip) {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return absl::ErrnoToStatus(errno, "rtnetlink socket");
  absl::StatusOr<int> type = RouteType(fd, ip);
  ::close(fd);
  if (!type.ok()) return type.status();
  if (*type == -ENETUNREACH || *type == -EHOSTUNREACH) return false;
  if (*type < 0) return absl::ErrnoToStatus(-*type, "rtnetlink route lookup");
  return *type == RTN_LOCAL;
}

}  // namespace churnlab
