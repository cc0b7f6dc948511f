// The coordinator's HTTP side: a read-only JSON API over the same state the gRPC Control service
// serves (the dashboard builds on it).
//   GET /api/agents                 the attached agents
//   GET /api/runs                   the runs, newest first
//   GET /api/runs/ID                one run's report
//   GET /api/runs/ID/series.csv     its per-second series
#pragma once

#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "common/net_address.h"
#include "coordinator/coordinator.h"

namespace httplib {
class Server;
}

namespace churnlab {

class HttpApi {
 public:
  explicit HttpApi(Coordinator* coordinator);
  ~HttpApi();  // Stop()s

  // Binds `address` (port 0 picks one) and serves on a thread of its own; returns the bound port.
  // UNAVAILABLE naming the address when it cannot bind.
  absl::StatusOr<int> Start(const SocketAddress& address);
  void Stop();

 private:
  Coordinator* coordinator_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace churnlab
