// A running coordinator process: the run store, the Coordinator, its gRPC services and HTTP side,
// and the thread that ticks it. churnlab-coordinator's main() makes one from its configuration;
// tests can too.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "coordinator/coordinator.h"
#include "coordinator/coordinator_config.h"
#include "coordinator/grpc_door.h"
#include "coordinator/http_api.h"
#include "coordinator/run_store.h"
#include "coordinator/services.h"

namespace churnlab {

class CoordinatorServer {
 public:
  // Opens the store, listens and starts ticking; the address files are written once listening.
  // UNAVAILABLE and the like (exit 3 material): a store that does not open, a port in use.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(CoordinatorConfig config);
  ~CoordinatorServer();  // Stop()s

  // One line: where gRPC and HTTP listen, with what security, and the store.
  std::string Describe() const;
  // Stops ticking, then the HTTP side, then gRPC (2 s for calls in flight).
  void Stop();

 private:
  explicit CoordinatorServer(CoordinatorConfig config);
  absl::Status StartGrpc();
  absl::Status StartHttp();
  absl::Status WriteAddressFiles() const;

  CoordinatorConfig config_;
  std::unique_ptr<RunStore> store_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<AgentGatewayService> gateway_;
  std::unique_ptr<ControlService> control_;
  std::unique_ptr<GrpcDoor> grpc_door_;  // the gRPC port: accepts, caps, hands to grpc_
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<HttpApi> http_;
  std::optional<HttpApi::Bound> http_bound_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread ticker_;
  std::thread stall_watch_;  // credits the coordinator's own stalls (CreditStall)
};

}  // namespace churnlab
