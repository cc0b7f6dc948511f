// A one-namespace lab for end-to-end tests: a network namespace of the test's own (optionally
// with a 1,000-port range and no TIME_WAIT reuse, so port limits show in seconds), with a
// coordinator, targets and agents started inside it and `churnlab` commands run there.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "tests/support/network_namespace.h"
#include "tests/support/target_process.h"

namespace churnlab::testing {

class NetnsLab {
 public:
  // UNAVAILABLE when not root. `small_port_range`: 40000-40999 and tcp_tw_reuse=0.
  static absl::StatusOr<std::unique_ptr<NetnsLab>> Create(const std::string& tag,
                                                          bool small_port_range);

  absl::Status StartCoordinator();
  absl::StatusOr<TargetProcess> StartTarget(const std::vector<std::string>& flags);
  absl::Status StartAgent(const std::string& name, const std::string& source_ips);
  // An agent with these flags besides --coordinator and --name (its sources, say).
  absl::Status StartAgentWith(const std::string& name, std::vector<std::string> flags);

  // Runs `churnlab COMMAND --coordinator=... args... --report=FILE` inside, retrying while the
  // agents are still attaching; fills `report` from FILE. Returns the exit code, or -1.
  int Churnlab(const std::string& command, std::vector<std::string> args,
               google::protobuf::Message* report);
  // `churnlab ARGS... --coordinator=...` inside, once.
  absl::StatusOr<CommandResult> Command(std::vector<std::string> args);
  // Any command inside the namespace, once (30 s at most).
  absl::StatusOr<CommandResult> Exec(std::vector<std::string> argv) const;
  // The namespace's TCP counters now, from its /proc/net/snmp and /proc/net/netstat, by name
  // ("ActiveOpens", "ListenDrops", ...): the kernel's word to hold a report against.
  absl::StatusOr<std::map<std::string, int64_t>> KernelCounters() const;
  // How many TCP sockets `ss -tan state STATE FILTER...` lists inside.
  absl::StatusOr<uint64_t> Sockets(const std::string& state,
                                   const std::vector<std::string>& filter = {}) const;
  absl::Status SetSysctl(const std::string& key, const std::string& value) {
    return ns_.SetSysctl(key, value);
  }
  // The output of the last Churnlab() call.
  const std::string& output() const { return output_; }
  // The last `lines` lines each process started here (the coordinator, each agent) has written,
  // headed by its name: for a failed test's message, what the CLI cannot say (why an agent's
  // stream closed, say).
  std::string ProcessLogs(int lines = 12) const;
  // The coordinator's gRPC address inside the namespace.
  const std::string& coordinator() const { return coordinator_; }

 private:
  explicit NetnsLab(NetworkNamespace ns) : ns_(std::move(ns)) {}
  std::vector<std::string> Inside(std::vector<std::string> argv) const;

  NetworkNamespace ns_;
  std::string dir_ = MakeTempDir();
  std::string coordinator_;
  std::string output_;
  int reports_ = 0;
  struct Started {
    std::string name;  // "coordinator", or the agent's --name
    ChildProcess process;
  };
  std::vector<Started> processes_;  // stopped before the namespace goes
};

}  // namespace churnlab::testing
