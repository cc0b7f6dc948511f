#include "tests/support/target_process.h"

#include <signal.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace churnlab::testing {

std::map<std::string, uint64_t> TargetProcess::StopAndReadCounters() {
  process.Stop(SIGTERM);
  std::map<std::string, uint64_t> counters;
  std::vector<std::string> lines = absl::StrSplit(process.Output(), '\n', absl::SkipEmpty());
  for (auto it = lines.rbegin(); it != lines.rend() && counters.empty(); ++it) {
    if (it->find("accepted=") == std::string::npos) continue;
    for (absl::string_view field : absl::StrSplit(*it, ' ')) {
      std::pair<std::string, std::string> kv = absl::StrSplit(field, absl::MaxSplits('=', 1));
      uint64_t value = 0;
      if (absl::SimpleAtoi(kv.second, &value)) counters[kv.first] = value;
    }
  }
  return counters;
}

absl::StatusOr<TargetProcess> StartTarget(const std::vector<std::string>& flags,
                                          const std::vector<std::string>& command_prefix,
                                          const std::string& listen_ip) {
  std::string address_file = MakeTempDir() + "/address";
  std::vector<std::string> argv = command_prefix;
  argv.push_back(BinaryPath("churnlab-target"));
  bool has_listen = false;
  for (const std::string& flag : flags) has_listen = has_listen || flag.rfind("--listen=", 0) == 0;
  if (!has_listen) argv.push_back("--listen=" + listen_ip + ":0");
  argv.push_back("--address-file=" + address_file);
  argv.insert(argv.end(), flags.begin(), flags.end());
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(argv);
  if (!child.ok()) return child.status();
  absl::StatusOr<std::string> text = WaitForFile(address_file, absl::Seconds(10));
  if (!text.ok()) {
    return absl::UnavailableError(absl::StrCat("churnlab-target did not start: ", child->Output()));
  }
  absl::StatusOr<std::vector<SocketAddress>> addresses = ParseIpPortList(*text);
  if (!addresses.ok()) return addresses.status();
  return TargetProcess{std::move(*child), addresses->front(), *text};
}

}  // namespace churnlab::testing
