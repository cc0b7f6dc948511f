// churnlab-coordinator: agents dial in, users start runs; results go to a SQLite run store.
// main() parses the flags and starts a CoordinatorServer; coordinator_config.cc holds the
// flags and their rules, coordinator_server.cc the wiring.
#include <signal.h>

#include <cstdio>

#include "common/fd_limit.h"
#include "common/flags.h"
#include "common/signals.h"
#include "coordinator/coordinator_config.h"
#include "coordinator/coordinator_server.h"

namespace churnlab {
namespace {

int Main(int argc, char** argv) {
  CoordinatorFlags given;
  MakeCoordinatorFlags(given).ParseFlagsOnlyOrExit(argc, argv);
  absl::StatusOr<CoordinatorConfig> config = MakeCoordinatorConfig(given);
  ExitIfBadInput("churnlab-coordinator", config.status());
  // Each agent, CLI and browser connection is an fd: at a soft limit of 1,024, 1,500 idle HTTP
  // clients left the gRPC port unable to accept (no CLI could cancel, no agent attach).
  FdLimitChange fds = RaiseFdLimit();
  std::fprintf(stderr, "churnlab-coordinator: %s\n", fds.Describe().c_str());
  // Each door's cap keeps room for the other only if both fit under the limit, beside the
  // store, pipes and threads' own fds.
  const uint64_t doors = config->grpc_max_connections + config->http.server.max_connections;
  if (fds.soft < doors + kReservedFds) {
    std::fprintf(stderr,
                 "churnlab-coordinator: warning: fd limit %llu is under the gRPC and HTTP caps "
                 "(%zu + %zu) plus %llu of its own: at the limit neither door can accept; "
                 "lower --grpc-max-connections or --http-max-connections, or raise the limit\n",
                 static_cast<unsigned long long>(fds.soft), config->grpc_max_connections,
                 config->http.server.max_connections,
                 static_cast<unsigned long long>(kReservedFds));
  }
  sigset_t signals = BlockTerminationSignals();
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> server =
      CoordinatorServer::Start(*std::move(config));
  if (!server.ok()) {
    std::fprintf(stderr, "churnlab-coordinator: %s\n",
                 std::string(server.status().message()).c_str());
    return kExitCannotRun;
  }
  std::printf("churnlab-coordinator: %s\n", (*server)->Describe().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  std::printf("churnlab-coordinator: signal %d, shutting down\n", sig);
  (*server)->Stop();
  return kExitOk;
}

}  // namespace
}  // namespace churnlab

int main(int argc, char** argv) { return churnlab::Main(argc, argv); }
