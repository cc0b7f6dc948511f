#include "coordinator/coordinator_config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace churnlab {
namespace {

absl::StatusOr<SocketAddress> ParseListen(absl::string_view flag, const std::string& text) {
  absl::StatusOr<SocketAddress> parsed = SocketAddress::ParseIpPort(text);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", parsed.status().message()));
  }
  return parsed;
}

absl::StatusOr<HttpApi::Options> MakeHttpOptions(const CoordinatorFlags& o,
                                                 const LinkSecurity& security) {
  HttpApi::Options out;
  out.dashboard_dir = o.dashboard_dir.empty() ? FindDashboardDir() : o.dashboard_dir;
  out.access.token = security.token;
  out.access.public_read = o.public_read;
  if (!o.metrics_token_file.empty()) {
    SecurityFlags only_token;
    only_token.token_file = o.metrics_token_file;
    absl::StatusOr<LinkSecurity> metrics = LoadLinkSecurity(only_token);
    if (!metrics.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metrics-token-file: ", metrics.status().message()));
    }
    out.access.metrics_token = metrics->token;
  }
  for (absl::string_view host : absl::StrSplit(o.http_allowed_hosts, ',', absl::SkipEmpty())) {
    out.access.allowed_hosts.push_back(absl::AsciiStrToLower(host));
  }
  if (o.http_max_streams < 1 || o.http_max_connections < 1 ||
      o.http_request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--http-max-streams, --http-max-connections and --http-request-timeout must be positive");
  }
  if (o.metrics_expiry <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics-expiry=", absl::FormatDuration(o.metrics_expiry), ": must be positive"));
  }
  out.metrics.expiry = o.metrics_expiry;
  out.max_streams = static_cast<size_t>(o.http_max_streams);
  out.server.max_connections = static_cast<size_t>(o.http_max_connections);
  out.server.request_deadline = o.http_request_timeout;
  out.server.tls_cert = security.tls_cert;
  out.server.tls_key = security.tls_key;
  out.server.tls_ca = security.tls_ca;
  return out;
}

}  // namespace

FlagSet MakeCoordinatorFlags(CoordinatorFlags& o) {
  FlagSet flags("churnlab-coordinator",
                "Agents dial in here; `churnlab run` starts runs here. Splits each run over the\n"
                "agents, merges their telemetry and keeps every run in a SQLite store.\n"
                "Example: churnlab-coordinator --grpc-listen=127.0.0.1:7400 --db=runs.db");
  flags.String("grpc-listen", &o.grpc_listen, "IP:PORT for agents and the CLI; port 0 picks one");
  flags.String("http-listen", &o.http_listen,
               "IP:PORT of the dashboard, the JSON API (/api/...) and /metrics; empty = off");
  flags.String("dashboard-dir", &o.dashboard_dir,
               "the dashboard's files (static/ and node_modules/uplot); default: found next to "
               "this binary");
  flags.String("db", &o.db, "SQLite file of the run store");
  flags.String("address-file", &o.address_file,
               "write the bound gRPC address here once listening (for port 0)");
  flags.String("http-address-file", &o.http_address_file, "the same for the HTTP address");
  AddSecurityFlags(flags, &o.security, /*server=*/true);
  flags.String("http-plaintext-listen", &o.http_plaintext_listen,
               "with TLS, also serve HTTP without TLS on this loopback IP:PORT (for a local "
               "Prometheus or browser); the same token rules apply; default: none");
  flags.String("http-plaintext-address-file", &o.http_plaintext_address_file,
               "write the bound plaintext HTTP address here (for port 0)");
  flags.Bool("public-read", &o.public_read,
             "with --token-file, let anyone read over HTTP (/api/agents, /api/runs..., "
             "/api/events, /metrics); writes still need the token");
  flags.String("metrics-token-file", &o.metrics_token_file,
               "a second token that opens only /metrics (Prometheus' `authorization` "
               "credentials_file); the coordinator's token opens it too");
  flags.String("http-allowed-hosts", &o.http_allowed_hosts,
               "host names (comma-separated) a browser may use for this coordinator in write "
               "requests' Host and Origin, besides the IP it connected to (and localhost on "
               "loopback)");
  flags.Int("http-max-streams", &o.http_max_streams,
            "open /api/events streams; one more is refused with 503");
  flags.Int("http-max-connections", &o.http_max_connections,
            "open HTTP connections (streams included); more are closed at once");
  flags.Duration("http-request-timeout", &o.http_request_timeout,
                 "a request's headers and body must arrive within this of the connection's "
                 "start or its previous response, else the connection is closed");
  flags.Duration("metrics-expiry", &o.metrics_expiry,
                 "/metrics keeps a run name's series (its newest run's final values, its "
                 "counters) this long after its last run ended");
  flags.Int("max-agents", &o.max_agents,
            "agents and observers attached at once (at most 1000000); one more is refused "
            "(RESOURCE_EXHAUSTED) and counted in churnlab_coordinator_attaches_refused_total");
  flags.Int("grpc-max-connections", &o.grpc_max_connections,
            "connections the gRPC port holds at once, counted by the kernel; more are closed "
            "as they come and counted in churnlab_coordinator_connections_refused_total "
            "(at least --max-agents + 16; 0: --max-agents + 4096)");
  flags.Bool("insecure", &o.insecure,
             "allow listening on a non-loopback address without a token (anyone who can reach "
             "it can then make the agents send traffic)");
  return flags;
}

absl::StatusOr<CoordinatorConfig> MakeCoordinatorConfig(const CoordinatorFlags& o) {
  CoordinatorConfig c;
  ASSIGN_OR_RETURN(c.grpc_listen, ParseListen("--grpc-listen", o.grpc_listen));
  if (!o.http_listen.empty()) {
    ASSIGN_OR_RETURN(c.http_listen, ParseListen("--http-listen", o.http_listen));
  }
  ASSIGN_OR_RETURN(c.security, LoadLinkSecurity(o.security));
  ASSIGN_OR_RETURN(c.http, MakeHttpOptions(o, c.security));
  if (!o.http_plaintext_listen.empty()) {
    absl::StatusOr<SocketAddress> parsed = SocketAddress::ParseIpPort(o.http_plaintext_listen);
    if (!parsed.ok() || !parsed->is_loopback() || c.security.tls_cert.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--http-plaintext-listen=", o.http_plaintext_listen,
                       ": needs TLS (--tls-cert) and a loopback IP:PORT (the plaintext port "
                       "must not leave this host)"));
    }
    c.http_plaintext = *parsed;
  }
  if (c.security.token.empty() && !o.insecure) {
    for (const auto& [flag, address] :
         {std::pair{"--grpc-listen", std::optional<SocketAddress>(c.grpc_listen)},
          std::pair{"--http-listen", c.http_listen}}) {
      if (address.has_value() && !address->is_loopback()) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, "=", address->ToString(),
                         " is not loopback: give a --token-file (and TLS), or --insecure to "
                         "let anyone who reaches it start runs"));
      }
    }
  }
  if (o.max_agents < 1 || o.max_agents > kMaxAgentsLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-agents=", o.max_agents, ": not in 1..", kMaxAgentsLimit));
  }
  c.max_agents = static_cast<size_t>(o.max_agents);
  const int64_t grpc_cap =
      o.grpc_max_connections == 0 ? o.max_agents + kGrpcClientConnections : o.grpc_max_connections;
  const int64_t grpc_cap_limit = kMaxAgentsLimit + kGrpcClientConnections;
  if (grpc_cap < o.max_agents + kGrpcRoomForClients || grpc_cap > grpc_cap_limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--grpc-max-connections=", o.grpc_max_connections, ": not in ",
        o.max_agents + kGrpcRoomForClients, "..", grpc_cap_limit, " (--max-agents=", o.max_agents,
        " plus at least ", kGrpcRoomForClients, " for the CLI and scripts)"));
  }
  c.grpc_max_connections = static_cast<size_t>(grpc_cap);
  c.db = o.db;
  c.address_file = o.address_file;
  c.http_address_file = o.http_address_file;
  c.http_plaintext_address_file = o.http_plaintext_address_file;
  return c;
}

}  // namespace churnlab
