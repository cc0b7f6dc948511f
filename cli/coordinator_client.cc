#include "cli/coordinator_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/errno_name.h"
#include "common/terminal_text.h"

namespace churnlab {
namespace {

// Why a TCP connection to `address` (HOST:PORT, [V6]:PORT) fails, as the kernel says it: one
// connect() of our own, bounded by a second, since gRPC's channel keeps the errno to itself.
// "" when it connects (then the coordinator's TLS or gRPC is what failed).
std::string ConnectErrno(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return "no port in the address";
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), address.c_str() + colon + 1, &hints, &found); rc != 0) {
    return absl::StrCat("the name does not resolve (", gai_strerror(rc), ")");
  }
  std::string why;
  int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      socklen_t length = sizeof(err);
      err = poll(&p, 1, 1000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) == 0
                ? err
                : ETIMEDOUT;
    }
  }
  if (err != 0)
    why = absl::StrCat("connect() failed with ", ErrnoName(err), " (", strerror(err), ")");
  if (fd >= 0) close(fd);
  freeaddrinfo(found);
  return why;
}

}  // namespace

int Fail(const std::string& program, int code, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program.c_str(), TerminalSafe(message).c_str());
  return code;
}

int ExitCodeFor(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                 status.error_code() == grpc::StatusCode::NOT_FOUND
             ? kExitBadInput
             : kExitCannotRun;
}

int ExitCodeFor(const absl::Status& status) {
  return ExitCodeFor(grpc::Status(static_cast<grpc::StatusCode>(status.code()), ""));
}

void AddCoordinatorFlags(FlagSet& flags, CoordinatorFlags* f) {
  flags.String("coordinator", &f->address, "HOST:PORT of the coordinator");
  AddSecurityFlags(flags, &f->security, /*server=*/false);
}

std::variant<Connection, int> Dial(const std::string& program, const CoordinatorFlags& f) {
  absl::StatusOr<LinkSecurity> security = LoadLinkSecurity(f.security);
  if (!security.ok()) return Fail(program, kExitBadInput, std::string(security.status().message()));
  std::shared_ptr<grpc::Channel> channel = DialCoordinator(f.address, *security);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    std::string why = ConnectErrno(f.address);
    return Fail(program, kExitCannotRun,
                absl::StrCat("cannot reach the coordinator at ", f.address,
                             why.empty() ? ": it accepts TCP but gRPC did not connect (TLS, or "
                                           "not a churnlab coordinator?)"
                                         : absl::StrCat(": ", why)));
  }
  return Connection{v1::Control::NewStub(channel)};
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace churnlab
