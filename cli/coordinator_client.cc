#include "cli/coordinator_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
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

// The attached, idle agents of a listing (of `names` when not empty): who a run would get.
std::vector<std::string> ReadyAgents(const v1::ListAgentsResponse& agents,
                                     const std::vector<std::string>& names) {
  std::vector<std::string> ready;
  for (const v1::AgentInfo& agent : agents.agents()) {
    const std::string& name = agent.hello().name();
    if (agent.state() != v1::AgentInfo::STATE_IDLE) continue;
    if (!names.empty() && std::find(names.begin(), names.end(), name) == names.end()) continue;
    ready.push_back(name);
  }
  return ready;
}

}  // namespace

int WaitForAgents(const std::string& program, v1::Control::Stub* stub, int64_t want,
                  const std::vector<std::string>& names, absl::Duration timeout,
                  const std::function<bool()>& stop) {
  // On the steady clock: a wall-clock step neither ends the wait early nor stretches it.
  const auto give_up = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  std::string said;
  std::string last_error;
  for (;;) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::ListAgentsRequest request;
    v1::ListAgentsResponse response;
    grpc::Status status = stub->ListAgents(&context, request, &response);
    std::vector<std::string> ready;
    if (status.ok()) {
      ready = ReadyAgents(response, names);
      last_error.clear();
    } else {
      last_error = status.error_message();
    }
    if (static_cast<int64_t>(ready.size()) >= want) return kExitOk;
    std::string now =
        last_error.empty()
            ? absl::StrCat("waiting for ", want, " agent(s): ", ready.size(), " ready",
                           ready.empty() ? "" : " (", absl::StrJoin(ready, ", "),
                           ready.empty() ? "" : ")")
            : absl::StrCat("waiting for ", want, " agent(s): cannot list them (", last_error, ")");
    if (now != said) {
      std::printf("%s\n", TerminalSafe(now).c_str());
      std::fflush(stdout);
      said = now;
    }
    if (stop()) return Fail(program, kExitFailed, "interrupted while " + now);
    if (std::chrono::steady_clock::now() >= give_up) {
      return Fail(
          program, kExitCannotRun,
          absl::StrCat("--expect-agents=", want, ": after ", absl::FormatDuration(timeout),
                       " only ", ready.size(), " attached and idle",
                       ready.empty() ? "" : " (" + absl::StrJoin(ready, ", ") + ")",
                       last_error.empty() ? "" : "; the last listing failed: " + last_error));
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
}

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
  if (absl::Status address = CheckCoordinatorAddress("coordinator", f.address); !address.ok()) {
    return Fail(program, kExitBadInput, std::string(address.message()));
  }
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

}  // namespace churnlab
