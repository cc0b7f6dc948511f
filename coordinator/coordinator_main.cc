// churnlab-coordinator: agents dial in, users start runs; results go to a SQLite run store.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/address_file.h"
#include "common/flags.h"
#include "common/net_address.h"
#include "common/signals.h"
#include "coordinator/coordinator.h"
#include "coordinator/http_api.h"
#include "coordinator/run_store.h"
#include "coordinator/services.h"
#include "proto/grpc_link.h"

namespace churnlab {
namespace {

struct Options {
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
};

FlagSet MakeFlags(Options& o) {
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
  flags.Bool("insecure", &o.insecure,
             "allow listening on a non-loopback address without a token (anyone who can reach "
             "it can then make the agents send traffic)");
  return flags;
}

absl::StatusOr<HttpApi::Options> MakeHttpOptions(Options& o, const LinkSecurity& security) {
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

int Main(int argc, char** argv) {
  Options o;
  FlagSet flags = MakeFlags(o);
  flags.ParseFlagsOnlyOrExit(argc, argv);
  absl::StatusOr<SocketAddress> listen = SocketAddress::ParseIpPort(o.grpc_listen);
  if (!listen.ok()) {
    ExitIfBadInput("churnlab-coordinator", absl::InvalidArgumentError(absl::StrCat(
                                               "--grpc-listen: ", listen.status().message())));
  }
  std::optional<SocketAddress> http_listen;
  if (!o.http_listen.empty()) {
    absl::StatusOr<SocketAddress> parsed = SocketAddress::ParseIpPort(o.http_listen);
    if (!parsed.ok()) {
      ExitIfBadInput("churnlab-coordinator", absl::InvalidArgumentError(absl::StrCat(
                                                 "--http-listen: ", parsed.status().message())));
    }
    http_listen = *parsed;
  }
  absl::StatusOr<LinkSecurity> security = LoadLinkSecurity(o.security);
  if (!security.ok()) ExitIfBadInput("churnlab-coordinator", security.status());
  absl::StatusOr<HttpApi::Options> http_options = MakeHttpOptions(o, *security);
  if (!http_options.ok()) ExitIfBadInput("churnlab-coordinator", http_options.status());
  std::optional<SocketAddress> http_plaintext;
  if (!o.http_plaintext_listen.empty()) {
    absl::StatusOr<SocketAddress> parsed = SocketAddress::ParseIpPort(o.http_plaintext_listen);
    if (!parsed.ok() || !parsed->is_loopback() || security->tls_cert.empty()) {
      ExitIfBadInput("churnlab-coordinator",
                     absl::InvalidArgumentError(absl::StrCat(
                         "--http-plaintext-listen=", o.http_plaintext_listen,
                         ": needs TLS (--tls-cert) and a loopback IP:PORT (the plaintext port "
                         "must not leave this host)")));
    }
    http_plaintext = *parsed;
  }
  if (security->token.empty() && !o.insecure) {
    for (const auto& [flag, address] :
         {std::pair{"--grpc-listen", std::optional<SocketAddress>(*listen)},
          std::pair{"--http-listen", http_listen}}) {
      if (address.has_value() && !address->is_loopback()) {
        ExitIfBadInput("churnlab-coordinator",
                       absl::InvalidArgumentError(absl::StrCat(
                           flag, "=", address->ToString(),
                           " is not loopback: give a --token-file (and TLS), or --insecure to "
                           "let anyone who reaches it start runs")));
      }
    }
  }
  sigset_t signals = BlockTerminationSignals();

  absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(o.db);
  if (!store.ok()) {
    std::fprintf(stderr, "churnlab-coordinator: %s\n",
                 std::string(store.status().message()).c_str());
    return kExitCannotRun;
  }
  Coordinator coordinator(store->get(), Coordinator::Options{});
  AgentGatewayService gateway(&coordinator, security->token);
  ControlService control(&coordinator, security->token);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.grpc_listen, CoordinatorCredentials(*security), &port);
  ConfigureCoordinatorServer(&builder);
  builder.RegisterService(&gateway);
  builder.RegisterService(&control);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "churnlab-coordinator: cannot listen on %s\n", o.grpc_listen.c_str());
    return kExitCannotRun;
  }
  listen->set_port(port);
  HttpApi http(&coordinator, *std::move(http_options));
  std::string http_address = "off";
  if (http_listen.has_value()) {
    absl::StatusOr<HttpApi::Bound> bound = http.Start(*http_listen, http_plaintext);
    if (!bound.ok()) {
      std::fprintf(stderr, "churnlab-coordinator: %s\n",
                   std::string(bound.status().message()).c_str());
      return kExitCannotRun;
    }
    http_address = bound->address.ToString();
    std::vector<std::pair<std::string, std::string>> files = {{o.http_address_file, http_address}};
    if (bound->plaintext.has_value()) {
      http_address += absl::StrCat(" (", security->tls_cert.empty() ? "plaintext" : "TLS",
                                   "; plaintext on ", bound->plaintext->ToString(), ")");
      files.emplace_back(o.http_plaintext_address_file, bound->plaintext->ToString());
    } else if (!security->tls_cert.empty()) {
      http_address += " (TLS)";
    }
    for (const auto& [file, address] : files) {
      if (file.empty()) continue;
      if (absl::Status s = WriteAddressFile(file, address); !s.ok()) {
        std::fprintf(stderr, "churnlab-coordinator: %s\n", std::string(s.message()).c_str());
        return kExitCannotRun;
      }
    }
  }
  std::printf("churnlab-coordinator: gRPC on %s (%s, %s), HTTP on %s, run store %s\n",
              listen->ToString().c_str(),
              security->tls_cert.empty() ? "plaintext"
              : security->tls_ca.empty() ? "TLS"
                                         : "mutual TLS",
              security->token.empty() ? "no token" : "token required", http_address.c_str(),
              o.db.c_str());
  std::fflush(stdout);
  if (!o.address_file.empty()) {
    if (absl::Status s = WriteAddressFile(o.address_file, listen->ToString()); !s.ok()) {
      std::fprintf(stderr, "churnlab-coordinator: %s\n", std::string(s.message()).c_str());
      return kExitCannotRun;
    }
  }

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread ticker([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping; })) {
      lock.unlock();
      coordinator.Tick(absl::Now());
      lock.lock();
    }
  });
  int sig = 0;
  sigwait(&signals, &sig);
  std::printf("churnlab-coordinator: signal %d, shutting down\n", sig);
  {
    std::lock_guard<std::mutex> lock(mu);
    stopping = true;
  }
  cv.notify_all();
  ticker.join();
  http.Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return kExitOk;
}

}  // namespace
}  // namespace churnlab

int main(int argc, char** argv) { return churnlab::Main(argc, argv); }
