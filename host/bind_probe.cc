#include "host/bind_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

// Linux 6.3's per-socket local port range (include/uapi/linux/in.h); Debian 12's headers predate
// it. The kernel answers ENOPROTOOPT where it does not know the option.
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif

namespace churnlab {
namespace {

// A loopback address and port no program uses, so the probe's four-tuple is always new: only
// the bind bucket decides (the kernel's local route takes 127.0.0.0/8 without a packet).
constexpr char kProbeAddress[] = "127.255.255.254";
constexpr uint16_t kProbePort = 9;

enum class Probe { kUsable, kBindTaken, kCannotAsk };

// connect() from a socket limited to `port`, in repair mode: EADDRNOTAVAIL means the kernel's
// port choice passed over it. Any other failure means the kernel cannot be asked this way.
Probe AskKernel(uint16_t port, int* error) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno;
    return Probe::kCannotAsk;
  }
  const int on = 1;
  const uint32_t range = static_cast<uint32_t>(port) | (static_cast<uint32_t>(port) << 16);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kProbePort);
  inet_pton(AF_INET, kProbeAddress, &to.sin_addr);
  Probe answer = Probe::kUsable;
  if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) != 0 ||
      setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof(range)) != 0) {
    *error = errno;
    answer = Probe::kCannotAsk;
  } else if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0) {
    *error = errno;
    answer = errno == EADDRNOTAVAIL ? Probe::kBindTaken : Probe::kCannotAsk;
  } else {
    // Connected in repair mode, the socket is ESTABLISHED, and closing it from there counts one
    // of the host's EstabResets (every report's kernel counters showed hundreds of them, all
    // the probe's). shutdown() takes it to FIN_WAIT1 instead, from where close() counts nothing;
    // its FIN stays queued (a repair-mode connection has no send window), so no packet leaves,
    // as long as close() follows within the zero-window probe timer (a retransmission timeout,
    // 200 ms at least). The answer stands either way: a failed shutdown() costs only the count.
    [[maybe_unused]] const int shut = shutdown(fd, SHUT_WR);
  }
  close(fd);  // in repair mode: nothing is sent, no TIME_WAIT is left
  return answer;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PortSet>> BindTakenPorts(const PortSet& held) {
  auto taken = std::make_unique<PortSet>();
  if (held.none()) return taken;
  const PortSet reserved = ReservedPortSet(ReservedPortsList());
  for (uint32_t port = 1; port < held.size(); ++port) {
    if (!held.test(port) || reserved.test(port)) continue;
    int error = 0;
    Probe answer = AskKernel(static_cast<uint16_t>(port), &error);
    // Another prober (every agent on a host asks of its range every few seconds) holds the
    // probe's four-tuple on this port for a few microseconds, and connect() refuses it then as
    // it refuses a bind()'s port. A bind()'s port stays refused: asked twice more, 100 us apart.
    for (int again = 0; again < 2 && answer == Probe::kBindTaken; ++again) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      answer = AskKernel(static_cast<uint16_t>(port), &error);
    }
    switch (answer) {
      case Probe::kUsable:
        break;
      case Probe::kBindTaken:
        taken->set(port);
        break;
      case Probe::kCannotAsk:
        return absl::UnavailableError(absl::StrCat(
            "cannot ask the kernel which ports bind() took (TCP repair mode needs CAP_NET_ADMIN, "
            "IP_LOCAL_PORT_RANGE Linux 6.3): ",
            strerror(error)));
    }
  }
  return taken;
}

}  // namespace churnlab
