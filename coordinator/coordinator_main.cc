// churnlab-coordinator: agents dial in, users start runs; results go to a SQLite run store.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
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
  flags.Bool("insecure", &o.insecure,
             "allow listening on a non-loopback address without a token (anyone who can reach "
             "it can then make the agents send traffic)");
  return flags;
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
  if (o.dashboard_dir.empty()) o.dashboard_dir = FindDashboardDir();
  HttpApi http(&coordinator, HttpApi::Options{o.dashboard_dir, security->token});
  std::string http_address = "off";
  if (http_listen.has_value()) {
    absl::StatusOr<int> http_port = http.Start(*http_listen);
    if (!http_port.ok()) {
      std::fprintf(stderr, "churnlab-coordinator: %s\n",
                   std::string(http_port.status().message()).c_str());
      return kExitCannotRun;
    }
    http_listen->set_port(*http_port);
    http_address = http_listen->ToString();
    if (!o.http_address_file.empty()) {
      if (absl::Status s = WriteAddressFile(o.http_address_file, http_address); !s.ok()) {
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
