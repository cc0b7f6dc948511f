// What every `churnlab` subcommand that talks to a coordinator shares: its flags, the dial, and
// how failures become messages and exit codes.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "churnlab/v1/control.grpc.pb.h"
#include "common/flags.h"
#include "proto/grpc_link.h"

namespace churnlab {

struct Connection {
  std::unique_ptr<v1::Control::Stub> stub;
};

inline constexpr absl::string_view kDefaultCoordinator = "127.0.0.1:7400";

// Where the coordinator is and how to prove who we are to it.
struct CoordinatorFlags {
  std::string address{kDefaultCoordinator};
  SecurityFlags security;
};

void AddCoordinatorFlags(FlagSet& flags, CoordinatorFlags* f);

// Prints "PROGRAM: MESSAGE" (escaped: messages often echo what the user or an agent sent) and
// returns `code`.
int Fail(const std::string& program, int code, const std::string& message);

// Exit code for a failed RPC: the caller's fault (a bad value, an unknown run id) is 2,
// everything else could-not-run (3).
int ExitCodeFor(const grpc::Status& status);
int ExitCodeFor(const absl::Status& status);

// Dials the coordinator, waiting up to 5 s. On failure returns the exit code (the message
// printed): 2 when a token or certificate file cannot be read, 3 when it is unreachable.
std::variant<Connection, int> Dial(const std::string& program, const CoordinatorFlags& f);

// --expect-agents: waits until `want` agents are attached and idle (of `names` when it is not
// empty), polling every 250 ms and printing who is there whenever that changes. 0 when they
// are there; after `timeout` 3, when `stop` turns true (Ctrl-C) 1, the message printed.
int WaitForAgents(const std::string& program, v1::Control::Stub* stub, int64_t want,
                  const std::vector<std::string>& names, absl::Duration timeout,
                  const std::function<bool()>& stop);

}  // namespace churnlab
