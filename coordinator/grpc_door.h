// The coordinator's gRPC port, with an accept loop of its own. gRPC (1.51, Debian's) has no cap
// on the connections it accepts: 3,000 idle ones were held, and at the fd limit no CLI could
// cancel a run and no agent attach. Here the door accepts, asks the kernel how many of the
// connections it handed to gRPC are still open (sock_diag: a socket whose fd is closed has no
// inode), and hands the new one to gRPC only below the cap; otherwise it closes it at once and
// counts it. The cap is exact: the kernel's own word, one accepting thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "absl/status/statusor.h"
#include "common/net_address.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace churnlab {

class GrpcDoor {
 public:
  struct Counts {
    uint64_t open = 0;           // handed to gRPC and not yet closed, at the last accept
    uint64_t refused = 0;        // closed at once: `max_connections` were open
    uint64_t accept_errors = 0;  // EMFILE and the like; accepting pauses 100 ms
  };

  // Binds and listens on `address` (port 0 picks one; the IPv6 wildcard takes IPv4 too, as
  // gRPC's own listener does). UNAVAILABLE naming the address when it cannot.
  static absl::StatusOr<std::unique_ptr<GrpcDoor>> Open(const SocketAddress& address,
                                                        size_t max_connections);
  ~GrpcDoor();  // Stop()s

  // Before the server is built: gRPC takes the door's connections with `credentials`.
  void AttachTo(grpc::ServerBuilder* builder, std::shared_ptr<grpc::ServerCredentials> credentials);
  // After the server started: accepting begins.
  void Start();
  // Stops accepting and closes the listener (the connections gRPC holds stay its own).
  void Stop();

  const SocketAddress& address() const { return address_; }
  Counts counts() const;

 private:
  GrpcDoor(int listener, int wake, SocketAddress address, size_t max_connections);
  void AcceptLoop();
  void Admit(int fd);
  // Of the sockets handed to gRPC, how many still have their fd; forgets the others.
  uint64_t StillOpen();

  const int listener_;
  const int wake_;  // an eventfd: Stop() wakes the loop with it
  const SocketAddress address_;
  const size_t max_connections_;
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::thread thread_;
  std::set<uint64_t> handed_;  // inodes of the sockets gRPC took (loop thread only)
  // The last refusal logged and the last StillOpen, on the monotonic clock (loop thread only).
  bool said_ = false, walked_ = false;
  std::chrono::steady_clock::time_point last_said_, last_walk_;
  std::atomic<uint64_t> open_{0}, refused_{0}, accept_errors_{0};
  std::once_flag stopped_;
};

}  // namespace churnlab
