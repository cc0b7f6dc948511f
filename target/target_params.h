// How churnlab-target behaves: where it listens, what it speaks, when it closes, how slowly it
// answers and accepts. Each knob reproduces one failure a churn test can meet.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/net_address.h"
#include "common/wire_protocol.h"

namespace churnlab {

enum class CloseMode : uint8_t {
  kServer,  // close right after each answer: the server keeps the TIME_WAIT
  kClient,  // wait for the client to close (HTTP "Connection: close" is honoured)
  kNever,   // never close, not even after the client's FIN: CLOSE_WAIT piles up
};

absl::string_view CloseModeName(CloseMode mode);  // "server", "client", "never"
absl::StatusOr<CloseMode> ParseCloseMode(absl::string_view name);

// A response delay drawn uniformly from [min, max].
struct DelayRange {
  absl::Duration min = absl::ZeroDuration();
  absl::Duration max = absl::ZeroDuration();
};
// "10ms..1000ms", or "50ms" for a fixed delay. INVALID_ARGUMENT naming the text when malformed
// or when min > max.
absl::StatusOr<DelayRange> ParseDelayRange(absl::string_view text);

struct TargetParams {
  std::vector<SocketAddress> listen;  // port 0 picks a free port, shared by all workers
  // The listen ports are this target's own, open in the process that forked this one
  // (--processes): join them. Otherwise a port some other socket holds is refused, rather than
  // shared through SO_REUSEPORT with whatever listens there (a target left running took half).
  bool join_own_ports = false;
  Protocol protocol = Protocol::kCounter;
  CloseMode close_mode = CloseMode::kClient;
  DelayRange delay;
  int backlog = 4096;  // listen() backlog of each worker's socket (the kernel caps it at somaxconn)
  double accept_rate = 0;  // accepts per second over all workers; 0 = as fast as possible
  int threads = 2;
  int64_t max_leaked = 10000;  // kNever: connections kept open after the client's FIN, at most
  // Protocols tls and https: the certificate (chain) and its key, PEM files; required then.
  std::string tls_cert;
  std::string tls_key;
};

// OK, or INVALID_ARGUMENT naming the offending field and value.
absl::Status ValidateTargetParams(const TargetParams& params);

}  // namespace churnlab
