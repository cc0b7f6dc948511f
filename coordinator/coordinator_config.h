// churnlab-coordinator's command line: its flags, and the checked configuration they make.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/flags.h"
#include "common/net_address.h"
#include "coordinator/http_api.h"
#include "proto/grpc_link.h"

namespace churnlab {

// --max-agents at most: far above any fleet, a bound on what the flag can ask of memory.
inline constexpr int64_t kMaxAgentsLimit = 1'000'000;

// The flags as given.
struct CoordinatorFlags {
  std::string grpc_listen = "127.0.0.1:7400";
  std::string http_listen = "127.0.0.1:7401";
  std::string db = "churnlab.db";
  std::string address_file;
  std::string http_address_file;
  std::string dashboard_dir;
  SecurityFlags security;
  bool insecure = false;
  std::string http_plaintext_listen;
  std::string http_plaintext_address_file;
  bool public_read = false;
  std::string metrics_token_file;
  std::string http_allowed_hosts;
  int64_t http_max_streams = 256;
  int64_t http_max_connections = 4096;
  absl::Duration http_request_timeout = absl::Seconds(10);
  absl::Duration metrics_expiry = absl::Hours(24);
  int64_t max_agents = 4096;
  int64_t grpc_max_connections = 0;  // 0: max_agents + kGrpcClientConnections
};

FlagSet MakeCoordinatorFlags(CoordinatorFlags& flags);

// What the flags mean, checked: addresses parsed, token and certificates loaded.
struct CoordinatorConfig {
  SocketAddress grpc_listen;
  std::optional<SocketAddress> http_listen;     // none: no HTTP side
  std::optional<SocketAddress> http_plaintext;  // with TLS, a loopback plaintext port too
  LinkSecurity security;
  HttpApi::Options http;
  std::string db;
  std::string address_file;
  std::string http_address_file;
  std::string http_plaintext_address_file;
  size_t max_agents = 4096;  // agents and observers attached at once
  // Connections the gRPC port holds at once (GrpcDoor); more are closed as they come. At least
  // max_agents + kGrpcRoomForClients, so attached agents never lock the CLI out.
  size_t grpc_max_connections = 4096 + 4096;
};

inline constexpr int64_t kGrpcRoomForClients = 16;
// The default room for CLIs and scripts beside max_agents.
inline constexpr int64_t kGrpcClientConnections = 4096;

// INVALID_ARGUMENT naming the flag: an address that does not parse, unreadable token or
// certificate files, non-positive HTTP limits, a plaintext port without TLS or off loopback, and
// a non-loopback listener without a token unless --insecure, --max-agents outside
// 1..kMaxAgentsLimit, --grpc-max-connections below --max-agents + kGrpcRoomForClients.
absl::StatusOr<CoordinatorConfig> MakeCoordinatorConfig(const CoordinatorFlags& flags);

}  // namespace churnlab
