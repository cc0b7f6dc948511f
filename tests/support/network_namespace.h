// A network namespace the test creates and deletes itself (needs root): loopback up, sysctls set
// inside it only, and a way to run code or commands in it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace churnlab::testing {

class NetworkNamespace {
 public:
  // Creates "churnlab-<tag>-<pid>" with lo up. UNAVAILABLE when not root or `ip` is missing.
  static absl::StatusOr<NetworkNamespace> Create(const std::string& tag);
  NetworkNamespace(NetworkNamespace&& other) noexcept : name_(std::move(other.name_)) {
    other.name_.clear();
  }
  ~NetworkNamespace();  // deletes the namespace

  const std::string& name() const { return name_; }
  // `sysctl -w key=value` inside the namespace.
  absl::Status SetSysctl(const std::string& key, const std::string& value);
  // The namespace's TCP counters now (/proc/net/snmp and /proc/net/netstat, as nstat reads them).
  absl::StatusOr<std::map<std::string, int64_t>> KernelCounters() const;
  // The prefix that runs a command inside: {"ip", "netns", "exec", name}.
  std::vector<std::string> ExecPrefix() const;
  // Runs `fn` on a new thread that has joined the namespace; threads it starts stay inside.
  absl::Status RunInside(const std::function<void()>& fn) const;

 private:
  explicit NetworkNamespace(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

}  // namespace churnlab::testing
