#include "tests/support/netns_lab.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "host/kernel_counters.h"
#include "proto/message_json.h"

namespace churnlab::testing {

absl::StatusOr<std::unique_ptr<NetnsLab>> NetnsLab::Create(const std::string& tag,
                                                           bool small_port_range) {
  absl::StatusOr<NetworkNamespace> ns = NetworkNamespace::Create(tag);
  if (!ns.ok()) return ns.status();
  std::unique_ptr<NetnsLab> lab(new NetnsLab(std::move(*ns)));
  if (small_port_range) {
    if (absl::Status s = lab->ns_.SetSysctl("net.ipv4.ip_local_port_range", "40000 40999");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = lab->ns_.SetSysctl("net.ipv4.tcp_tw_reuse", "0"); !s.ok()) return s;
  }
  return lab;
}

std::vector<std::string> NetnsLab::Inside(std::vector<std::string> argv) const {
  std::vector<std::string> full = ns_.ExecPrefix();
  full.insert(full.end(), argv.begin(), argv.end());
  return full;
}

absl::Status NetnsLab::StartCoordinator() {
  std::string address_file = dir_ + "/coordinator";
  absl::StatusOr<ChildProcess> c = ChildProcess::Start(
      Inside({BinaryPath("churnlab-coordinator"), "--grpc-listen=127.0.0.1:0",
              "--http-listen=", "--db=" + dir_ + "/runs.db", "--address-file=" + address_file}));
  if (!c.ok()) return c.status();
  processes_.push_back({"coordinator", std::move(*c)});
  absl::StatusOr<std::string> address = WaitForFile(address_file, absl::Seconds(10));
  if (!address.ok()) return address.status();
  coordinator_ = *address;
  return absl::OkStatus();
}

absl::StatusOr<TargetProcess> NetnsLab::StartTarget(const std::vector<std::string>& flags) {
  return testing::StartTarget(flags, ns_.ExecPrefix());
}

absl::Status NetnsLab::StartAgent(const std::string& name, const std::string& source_ips) {
  return StartAgentWith(name, {"--source-ips=" + source_ips});
}

absl::Status NetnsLab::StartAgentWith(const std::string& name, std::vector<std::string> flags) {
  std::vector<std::string> argv = {BinaryPath("churnlab-agent"), "--coordinator=" + coordinator_,
                                   "--name=" + name};
  argv.insert(argv.end(), flags.begin(), flags.end());
  absl::StatusOr<ChildProcess> agent = ChildProcess::Start(Inside(std::move(argv)));
  if (!agent.ok()) return agent.status();
  processes_.push_back({name, std::move(*agent)});
  return absl::OkStatus();
}

std::string NetnsLab::ProcessLogs(int lines) const {
  std::string out;
  for (const Started& started : processes_) {
    std::vector<std::string> all = absl::StrSplit(started.process.Output(), '\n');
    const size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
    absl::StrAppend(&out, "\n--- ", started.name, " (the last ", lines, " lines)\n",
                    absl::StrJoin(all.begin() + from, all.end(), "\n"));
  }
  return out;
}

absl::StatusOr<CommandResult> NetnsLab::Exec(std::vector<std::string> argv) const {
  return RunCommand(Inside(std::move(argv)), absl::Seconds(30));
}

absl::StatusOr<std::map<std::string, int64_t>> NetnsLab::KernelCounters() const {
  return ns_.KernelCounters();
}

absl::StatusOr<uint64_t> NetnsLab::Sockets(const std::string& state,
                                           const std::vector<std::string>& filter) const {
  std::vector<std::string> argv = {"ss", "-Htan", "state", state};
  argv.insert(argv.end(), filter.begin(), filter.end());
  absl::StatusOr<CommandResult> r = Exec(argv);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) return absl::InternalError("ss failed: " + r->output);
  return static_cast<uint64_t>(std::count(r->output.begin(), r->output.end(), '\n'));
}

absl::StatusOr<CommandResult> NetnsLab::Command(std::vector<std::string> args) {
  std::vector<std::string> argv = {BinaryPath("churnlab")};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--coordinator=" + coordinator_);
  return RunCommand(Inside(argv), absl::Seconds(30));
}

int NetnsLab::Churnlab(const std::string& command, std::vector<std::string> args,
                       google::protobuf::Message* report) {
  std::string path = absl::StrCat(dir_, "/report", ++reports_, ".json");
  std::vector<std::string> argv = {BinaryPath("churnlab"), command,
                                   "--coordinator=" + coordinator_};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--report=" + path);
  argv = Inside(argv);
  for (int attempt = 0; attempt < 50; ++attempt) {
    absl::StatusOr<CommandResult> r = RunCommand(argv, absl::Seconds(90));
    if (!r.ok()) return -1;
    output_ = r->output;
    // Exit 3 naming agents: they are still attaching.
    if (r->exit_code == 3 && r->output.find("agent") != std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    if (!text.str().empty() && !ParseMessageJson(text.str(), report).ok()) {
      return -1;
    }
    return r->exit_code;
  }
  return -1;
}

}  // namespace churnlab::testing
