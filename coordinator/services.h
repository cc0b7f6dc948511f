// The coordinator's two gRPC services (callback API): AgentGateway, where agents attach, and
// Control, where users start, watch and read runs. Both only translate to and from Coordinator.
#pragma once

#include "churnlab/v1/agent.grpc.pb.h"
#include "churnlab/v1/control.grpc.pb.h"
#include "common/work_queue.h"
#include "coordinator/coordinator.h"

namespace churnlab {

// absl::Status to grpc::Status, same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

class AgentGatewayService final : public v1::AgentGateway::CallbackService {
 public:
  explicit AgentGatewayService(Coordinator* coordinator, std::string token = "")
      : coordinator_(coordinator), token_(std::move(token)) {}
  grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>* Attach(
      grpc::CallbackServerContext* context) override;

 private:
  Coordinator* coordinator_;
  std::string token_;
};

// Its unary calls run on a queue of their own (two threads, 256 waiting; one more gets
// UNAVAILABLE), not on gRPC's threads: reading and writing the run store takes the disk.
class ControlService final : public v1::Control::CallbackService {
 public:
  explicit ControlService(Coordinator* coordinator, std::string token = "")
      : coordinator_(coordinator), token_(std::move(token)), calls_(2, 256) {}
  grpc::ServerUnaryReactor* StartRun(grpc::CallbackServerContext* context,
                                     const v1::StartRunRequest* request,
                                     v1::StartRunResponse* response) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* context,
                                   const v1::GetRunRequest* request,
                                   v1::GetRunResponse* response) override;
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* context,
                                     const v1::ListRunsRequest* request,
                                     v1::ListRunsResponse* response) override;
  grpc::ServerUnaryReactor* CancelRun(grpc::CallbackServerContext* context,
                                      const v1::CancelRunRequest* request,
                                      v1::CancelRunResponse* response) override;
  grpc::ServerWriteReactor<v1::RunUpdate>* WatchRun(grpc::CallbackServerContext* context,
                                                    const v1::WatchRunRequest* request) override;
  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* context,
                                       const v1::ListAgentsRequest* request,
                                       v1::ListAgentsResponse* response) override;

 private:
  Coordinator* coordinator_;
  std::string token_;
  WorkQueue calls_;  // last: destroyed (its threads joined) first
};

}  // namespace churnlab
