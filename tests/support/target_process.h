// Runs churnlab-target as a real process on a kernel-chosen port, and reads its final counters.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net_address.h"
#include "tests/support/child_process.h"

namespace churnlab::testing {

struct TargetProcess {
  ChildProcess process;
  SocketAddress address;     // the first listening address
  std::string address_list;  // all of them, comma-separated

  // SIGTERMs the target and returns its counters ("accepted" -> N, ...); empty when it printed
  // none.
  std::map<std::string, uint64_t> StopAndReadCounters();
};

// Starts `command_prefix` + churnlab-target --listen=<listen_ip>:0 + `flags`.
absl::StatusOr<TargetProcess> StartTarget(const std::vector<std::string>& flags,
                                          const std::vector<std::string>& command_prefix = {},
                                          const std::string& listen_ip = "127.0.0.1");

}  // namespace churnlab::testing
