// How churnlab's processes talk gRPC to the coordinator: one place for channel and server
// options, so agents, observers, the CLI and the coordinator agree on them.
//
// Keepalive: both ends ping every second on an idle connection and drop it when a ping goes
// unanswered for 1.5 s. A coordinator thus notices an agent whose network was cut (no FIN, no
// RST) within ~2.5 s, and an agent stops its load on its own just as fast when its coordinator
// goes silent (the dead-man switch).
//
// Security: a bearer token (`--token-file`) sent as `authorization: Bearer TOKEN` on every call
// and checked by the coordinator on every call; TLS with `--tls-cert`/`--tls-key` (the server's,
// or a client's for mutual TLS) and `--tls-ca` (on a client: the CA that signed the
// coordinator's certificate, which turns TLS on; on the coordinator: require client
// certificates signed by it).
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/flags.h"

namespace churnlab {

constexpr int kKeepaliveTimeMs = 1000;
constexpr int kKeepaliveTimeoutMs = 1500;
// How soon a client channel that lost its connection tries a new one when a call asks (every
// time: callers pace their own retries).
constexpr int kReconnectBackoffMs = 1000;
// The coordinator closes a connection that has not finished its handshakes in this long, and one
// with no call open for this long.
constexpr int kServerHandshakeTimeoutMs = 10000;
constexpr int kServerIdleTimeoutMs = 60000;

// File names from the command line.
struct SecurityFlags {
  std::string token_file;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  std::string tls_prefix;  // set by AddSecurityFlags, for the flags' names in errors
};
// --token-file and --{tls_prefix}tls-cert, -key, -ca. A binary whose own --tls-cert means
// something else (churnlab-target's serving certificate) names its link's "coordinator-tls-...".
void AddSecurityFlags(FlagSet& flags, SecurityFlags* f, bool server,
                      const std::string& tls_prefix = "");

// What the files hold.
struct LinkSecurity {
  std::string token;                      // "" = none
  std::string tls_cert, tls_key, tls_ca;  // PEM; all "" = plaintext
  bool tls() const { return !tls_cert.empty() || !tls_ca.empty(); }
};
// INVALID_ARGUMENT naming the flag and the file when one cannot be read, is empty, or a
// certificate comes without its key.
absl::StatusOr<LinkSecurity> LoadLinkSecurity(const SecurityFlags& flags);

// OK when `address` is a coordinator's HOST:PORT: an IP literal ("10.0.0.5:7400",
// "[fd00::1]:7400") or a DNS name ("coordinator.churnlab.svc:7400"), port 1-65535; or a gRPC
// target URI (dns:, ipv4:, ipv6:, unix:, unix-abstract:), which gRPC checks. INVALID_ARGUMENT
// naming `flag` and the value otherwise: an agent given "127.0.0.1" retried for ever.
absl::Status CheckCoordinatorAddress(const std::string& flag, const std::string& address);

std::shared_ptr<grpc::Channel> DialCoordinator(const std::string& address,
                                               const LinkSecurity& security);

// Keepalive pings to every client, permission for theirs, and the credentials to listen with.
void ConfigureCoordinatorServer(grpc::ServerBuilder* builder);
std::shared_ptr<grpc::ServerCredentials> CoordinatorCredentials(const LinkSecurity& security);

// OK when `token` is empty or the metadata carries `authorization: Bearer TOKEN`; else
// UNAUTHENTICATED. Compares in constant time.
absl::Status CheckBearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                              const std::string& token);
// The same for an HTTP Authorization header's value.
bool BearerTokenMatches(std::string_view authorization, const std::string& token);

}  // namespace churnlab
