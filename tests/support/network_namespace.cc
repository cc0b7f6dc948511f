#include "tests/support/network_namespace.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "host/kernel_counters.h"
#include "tests/support/child_process.h"

namespace churnlab::testing {
namespace {

absl::Status Run(const std::vector<std::string>& argv) {
  absl::StatusOr<CommandResult> r = RunCommand(argv, absl::Seconds(20));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::UnavailableError(absl::StrCat(argv[0], " ", argv[1], " failed: ", r->output));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<NetworkNamespace> NetworkNamespace::Create(const std::string& tag) {
  if (geteuid() != 0) return absl::UnavailableError("network namespaces need root");
  std::string name = absl::StrCat("churnlab-", tag, "-", getpid());
  Run({"ip", "netns", "del", name}).IgnoreError();  // left over from a crashed run
  if (absl::Status s = Run({"ip", "netns", "add", name}); !s.ok()) return s;
  NetworkNamespace ns(name);
  if (absl::Status s = Run({"ip", "-n", name, "link", "set", "lo", "up"}); !s.ok()) return s;
  return ns;
}

NetworkNamespace::~NetworkNamespace() {
  if (!name_.empty()) Run({"ip", "netns", "del", name_}).IgnoreError();
}

absl::Status NetworkNamespace::SetSysctl(const std::string& key, const std::string& value) {
  std::vector<std::string> argv = ExecPrefix();
  argv.insert(argv.end(), {"sysctl", "-q", "-w", absl::StrCat(key, "=", value)});
  return Run(argv);
}

absl::StatusOr<std::map<std::string, int64_t>> NetworkNamespace::KernelCounters() const {
  std::vector<std::string> argv = ExecPrefix();
  argv.insert(argv.end(), {"cat", "/proc/net/snmp", "/proc/net/netstat"});
  absl::StatusOr<CommandResult> r = RunCommand(argv, absl::Seconds(30));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) return absl::InternalError("cannot read /proc/net/snmp: " + r->output);
  return ParseProcNetCounters(r->output);
}

std::vector<std::string> NetworkNamespace::ExecPrefix() const {
  return {"ip", "netns", "exec", name_};
}

absl::Status NetworkNamespace::RunInside(const std::function<void()>& fn) const {
  absl::Status status;
  std::thread inside([&] {
    int fd = open(absl::StrCat("/run/netns/", name_).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      status = absl::ErrnoToStatus(errno, absl::StrCat("setns into ", name_));
      if (fd >= 0) close(fd);
      return;
    }
    close(fd);
    fn();
  });
  inside.join();
  return status;
}

}  // namespace churnlab::testing
