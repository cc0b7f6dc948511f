// churnlab-target's server: several epoll worker threads sharing each listening address through
// SO_REUSEPORT, answering the counter or HTTP protocol and closing as TargetParams says.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/os_sys_calls.h"
#include "target/target_params.h"
#include "target/target_tls.h"
#include "target/target_worker.h"

namespace churnlab {

class TargetServer {
 public:
  // Validates `params`, loads its TLS certificate, and listens on every address
  // (INVALID_ARGUMENT naming a bad field or file; the errno status of a failed bind/listen naming
  // the address). Serving starts with Start().
  static absl::StatusOr<std::unique_ptr<TargetServer>> Create(TargetParams params,
                                                              OsSysCalls& sys = RealSysCalls(),
                                                              Clock& clock = SystemClock());
  ~TargetServer();  // Stop()s

  // The listening addresses with the ports the kernel chose for port 0.
  const std::vector<SocketAddress>& addresses() const { return params_.listen; }
  void Start();
  // Stops every worker and closes every socket, leaked ones included. Idempotent.
  void Stop();
  // Sums over the workers; safe from any thread while serving.
  TargetCounters Counters() const;

 private:
  explicit TargetServer(TargetParams params) : params_(std::move(params)) {}

  TargetParams params_;
  SslCtxPtr tls_;  // protocols tls and https
  TargetWorker::Shared shared_;
  std::vector<std::unique_ptr<TargetWorker>> workers_;
  std::vector<std::thread> threads_;
  TargetCounters final_counters_;  // kept when Stop() releases the workers
};

}  // namespace churnlab
