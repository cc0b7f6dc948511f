#include "coordinator/grpc_door.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "host/tcp_socket_table.h"

namespace churnlab {
namespace {

absl::Status Unavailable(const SocketAddress& address, const char* what) {
  return absl::UnavailableError(
      absl::StrCat("cannot listen on ", address.ToString(), ": ", what, ": ", strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcDoor>> GrpcDoor::Open(const SocketAddress& address,
                                                         size_t max_connections) {
  int fd = socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable(address, "socket");
  const int on = 1, off = 0;
  // As gRPC's own listener: a restarted coordinator rebinds over its old TIME_WAIT, the IPv6
  // wildcard takes IPv4 too, and the accepted sockets inherit TCP_NODELAY.
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  if (address.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  if (bind(fd, address.sockaddr_ptr(), address.length()) != 0 || listen(fd, SOMAXCONN) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    absl::Status status = Unavailable(address, "bind/listen");
    close(fd);
    return status;
  }
  absl::StatusOr<SocketAddress> actual =
      SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&bound), length);
  int wake = actual.ok() ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
  if (!actual.ok() || wake < 0) {
    absl::Status status = actual.ok() ? Unavailable(address, "eventfd") : actual.status();
    close(fd);
    return status;
  }
  return std::unique_ptr<GrpcDoor>(new GrpcDoor(fd, wake, *actual, max_connections));
}

GrpcDoor::GrpcDoor(int listener, int wake, SocketAddress address, size_t max_connections)
    : listener_(listener),
      wake_(wake),
      address_(std::move(address)),
      max_connections_(max_connections) {}

GrpcDoor::~GrpcDoor() {
  Stop();
  close(wake_);
}

void GrpcDoor::AttachTo(grpc::ServerBuilder* builder,
                        std::shared_ptr<grpc::ServerCredentials> credentials) {
  acceptor_ = builder->experimental().AddExternalConnectionAcceptor(
      grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
      std::move(credentials));
}

void GrpcDoor::Start() {
  thread_ = std::thread([this] { AcceptLoop(); });
}

void GrpcDoor::Stop() {
  std::call_once(stopped_, [this] {
    const uint64_t one = 1;
    if (write(wake_, &one, sizeof(one)) != sizeof(one)) {
      std::perror("churnlab-coordinator: waking the gRPC door");
    }
    if (thread_.joinable()) thread_.join();
    // Refused from now on, not left to wait in a backlog that nobody accepts from.
    close(listener_);
  });
}

GrpcDoor::Counts GrpcDoor::counts() const {
  return Counts{open_.load(), refused_.load(), accept_errors_.load()};
}

void GrpcDoor::AcceptLoop() {
  pollfd fds[2] = {{listener_, POLLIN, 0}, {wake_, POLLIN, 0}};
  bool pause = false;
  while (true) {
    // After an accept error (EMFILE), 100 ms on the wake fd alone: the listener stays readable
    // with the connection still queued, and polling it would spin.
    int ready = pause ? poll(&fds[1], 1, 100) : poll(fds, 2, -1);
    if (ready < 0 && errno != EINTR) {
      std::perror("churnlab-coordinator: gRPC door poll");
      return;
    }
    if (ready > 0 && fds[1].revents != 0) return;  // Stop()
    pause = false;
    while (true) {
      int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        Admit(fd);
        continue;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        // EMFILE and the like: the connection stays queued; try again in 100 ms.
        accept_errors_.fetch_add(1);
        pause = true;
      }
      break;
    }
  }
}

void GrpcDoor::Admit(int fd) {
  // Only at the cap is the kernel asked (a walk of its socket table, every socket on the host),
  // and at most every 50 ms: below the cap the sockets handed over are at most as many as it
  // allows, and between walks the remembered set can only count too many, never too few.
  const auto now = std::chrono::steady_clock::now();  // monotonic: a clock step moves nothing
  bool full = handed_.size() >= max_connections_;
  if (full && (!walked_ || now - last_walk_ >= std::chrono::milliseconds(50))) {
    walked_ = true;
    last_walk_ = now;
    full = StillOpen() >= max_connections_;
  }
  if (full) {
    close(fd);
    uint64_t refused = refused_.fetch_add(1) + 1;
    // Said at most every 10 s: a flood must not become a flood of log lines.
    if (!said_ || now - last_said_ >= std::chrono::seconds(10)) {
      said_ = true;
      last_said_ = now;
      std::fprintf(stderr,
                   "churnlab-coordinator: gRPC port at its cap of %zu connections "
                   "(--grpc-max-connections): %llu refused so far\n",
                   max_connections_, static_cast<unsigned long long>(refused));
    }
    return;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    accept_errors_.fetch_add(1);
    close(fd);
    return;
  }
  handed_.insert(st.st_ino);
  open_.store(handed_.size());
  grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters params;
  params.listener_fd = listener_;
  params.fd = fd;  // gRPC's from here on: it closes it
  acceptor_->HandleNewConnection(&params);
}

uint64_t GrpcDoor::StillOpen() {
  std::set<uint64_t> open;
  absl::Status status =
      VisitTcpSockets(address_.family(), AllButListen(),
                      PortFilter{PortFilter::Side::kLocal, address_.port(), address_.port()},
                      [&](const RawTcpSocket& s) {
                        if (s.inode != 0 && handed_.count(s.inode) > 0) open.insert(s.inode);
                      });
  if (!status.ok()) {
    // Without the kernel's word the door cannot tell closed from open: it lets the
    // connection in (locking every client out would be worse) and says why, once.
    static std::once_flag said;
    std::call_once(said, [&] {
      std::fprintf(stderr, "churnlab-coordinator: gRPC connection cap not enforced: %s\n",
                   std::string(status.message()).c_str());
    });
    handed_.clear();
    return 0;
  }
  handed_ = std::move(open);
  open_.store(handed_.size());
  return handed_.size();
}

}  // namespace churnlab
