// How churnlab's processes talk gRPC to the coordinator: one place for channel and server
// options, so agents, observers, the CLI and the coordinator agree on them.
//
// Keepalive: both ends ping every second on an idle connection and drop it when a ping goes
// unanswered for 1.5 s. A coordinator thus notices an agent whose network was cut (no FIN, no
// RST) within ~2.5 s, and an agent stops its load on its own just as fast when its coordinator
// goes silent (the dead-man switch).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace churnlab {

constexpr int kKeepaliveTimeMs = 1000;
constexpr int kKeepaliveTimeoutMs = 1500;

std::shared_ptr<grpc::Channel> DialCoordinator(const std::string& address);

// Keepalive pings to every client, and permission for theirs.
void ConfigureCoordinatorServer(grpc::ServerBuilder* builder);

}  // namespace churnlab
