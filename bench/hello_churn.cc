// churnlab-hello-churn: does the coordinator give memory back after agents with big hellos
// leave? Starts a churnlab-coordinator, then in each round attaches --agents fake agents (the
// real AgentGateway protocol, no traffic) whose hellos are as large as the coordinator accepts
// (4,096 source IPs, 256 allow-list CIDRs and listen addresses, 64 sysctls of the longest size,
// a 255-byte host), starts a run on them, and drops them mid-run so that each is listed as lost.
// Prints the coordinator's resident memory (VmRSS) at the start, with each round attached,
// after it left, and at the end.
//
// churnlab-hello-churn --agents=40 --rounds=8
// churnlab-hello-churn --coordinator=OTHER/churnlab-coordinator --host-bytes=3900000  (before)
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "churnlab/v1/agent.grpc.pb.h"
#include "churnlab/v1/control.grpc.pb.h"
#include "common/flags.h"
#include "tests/support/child_process.h"

namespace churnlab {
namespace {

// The largest hello the coordinator accepts (proto/hello.h), or a bigger host to see the refusal.
v1::Hello BigHello(const std::string& name, int64_t host_bytes, int index) {
  v1::Hello h;
  h.set_name(name);
  h.set_host(std::string(host_bytes, 'h'));
  h.set_version(std::string(64, 'v'));
  for (int k = 0; k < 4096; ++k) {
    h.add_source_ips(absl::StrFormat("10.%d.%d.%d", 100 + index % 100, k / 256, k % 256));
  }
  h.add_allow_targets("127.0.0.0/8");
  for (int k = 1; k < 256; ++k) h.add_allow_targets(absl::StrFormat("10.%d.0.0/16", k));
  for (int k = 0; k < 256; ++k) h.add_listen_addresses(absl::StrFormat("10.1.%d.1:9000", k));
  for (int k = 0; k < 64; ++k) {
    (*h.mutable_sysctls())[absl::StrFormat("net.ipv4.%0119d", k)] = std::string(256, 's');
  }
  h.mutable_port_range()->set_low(32768);
  h.mutable_port_range()->set_high(60999);
  return h;
}

// One agent: sends its hello, reads (and ignores) what comes down, leaves on Close().
class FakeAgent final : public grpc::ClientBidiReactor<v1::AgentMessage, v1::CoordinatorMessage> {
 public:
  FakeAgent(v1::AgentGateway::Stub* stub, const v1::Hello& hello) {
    stub->async()->Attach(&context_, this);
    *hello_.mutable_hello() = hello;
    StartWrite(&hello_);
    StartRead(&in_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (ok) StartRead(&in_);
  }
  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }
  // The stream's end status (the coordinator's refusal, or CANCELLED).
  grpc::Status Close() {
    context_.TryCancel();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    return status_;
  }

 private:
  grpc::ClientContext context_;
  v1::AgentMessage hello_;
  v1::CoordinatorMessage in_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  grpc::Status status_;
};

long RssKib(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::string MiB(long kib) { return absl::StrFormat("%.0f MiB", kib / 1024.0); }

// Long: the benchmark's script from top to bottom (start, attach, churn, measure, print).
int Main(int argc, char** argv) {
  int64_t agents = 40;
  int64_t rounds = 8;
  int64_t host_bytes = 255;
  int64_t settle_ms = 4000;
  std::string coordinator_bin = testing::BinaryPath("churnlab-coordinator");
  FlagSet flags("churnlab-hello-churn",
                "Attaches rounds of fake agents with the largest hellos to a coordinator, drops\n"
                "them mid-run, and prints the coordinator's resident memory as they come and go.");
  flags.Int("agents", &agents, "fake agents per round");
  flags.Int("rounds", &rounds, "rounds (each round's agents have names of their own)");
  flags.Int("host-bytes", &host_bytes, "length of each hello's host (the limit is 255)");
  flags.Int("settle-ms", &settle_ms, "wait after a round leaves before reading its memory");
  flags.String("coordinator", &coordinator_bin, "the churnlab-coordinator binary to measure");
  flags.ParseFlagsOnlyOrExit(argc, argv);

  std::string dir = testing::MakeTempDir();
  absl::StatusOr<testing::ChildProcess> coordinator = testing::ChildProcess::Start(
      {coordinator_bin, "--grpc-listen=127.0.0.1:0",
       "--http-listen=", "--address-file=" + dir + "/grpc", "--db=" + dir + "/runs.db"});
  if (!coordinator.ok()) return kExitCannotRun;
  absl::StatusOr<std::string> address = testing::WaitForFile(dir + "/grpc", absl::Seconds(10));
  if (!address.ok()) return kExitCannotRun;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // ListAgents carries every hello
  args.SetMaxSendMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(*address, grpc::InsecureChannelCredentials(), args);
  auto gateway = v1::AgentGateway::NewStub(channel);
  auto control = v1::Control::NewStub(channel);
  auto listed = [&] {
    grpc::ClientContext context;
    v1::ListAgentsResponse response;
    control->ListAgents(&context, v1::ListAgentsRequest(), &response);
    int live = 0;
    for (const v1::AgentInfo& a : response.agents()) live += a.state() != v1::AgentInfo::STATE_LOST;
    return std::pair<int, int>{live, response.agents_size() - live};
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  pid_t pid = coordinator->pid();
  long start = RssKib(pid);
  std::printf("coordinator %s\nRSS at start: %s\n", coordinator_bin.c_str(), MiB(start).c_str());
  std::printf("%-6s %-16s %-16s %s\n", "round", "RSS attached", "RSS after leaving", "listed");
  for (int r = 0; r < rounds; ++r) {
    std::vector<std::unique_ptr<FakeAgent>> fleet;
    for (int i = 0; i < agents; ++i) {
      fleet.push_back(std::make_unique<FakeAgent>(
          gateway.get(), BigHello(absl::StrCat("big-", r, "-", i), host_bytes, i)));
    }
    for (int tries = 0; tries < 100 && listed().first < agents; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (int live = listed().first; live < agents) {
      grpc::Status refused = fleet.front()->Close();
      std::printf("only %d of %lld agents attached; the first's stream ended: %s\n", live,
                  static_cast<long long>(agents), refused.error_message().c_str());
      for (auto& agent : fleet) agent->Close();
      break;
    }
    v1::StartRunRequest start_run;
    start_run.mutable_spec()->add_targets("127.0.0.1:9");
    start_run.mutable_spec()->set_rate(static_cast<double>(agents));
    start_run.mutable_spec()->mutable_duration()->set_seconds(60);
    grpc::ClientContext context;
    v1::StartRunResponse started;
    grpc::Status s = control->StartRun(&context, start_run, &started);
    if (!s.ok()) std::printf("StartRun: %s\n", s.error_message().c_str());
    long attached = RssKib(pid);
    for (auto& agent : fleet) agent->Close();
    fleet.clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
    auto [live, lost] = listed();
    std::printf("%-6d %-16s %-16s %d live, %d lost\n", r + 1, MiB(attached).c_str(),
                MiB(RssKib(pid)).c_str(), live, lost);
    std::fflush(stdout);
  }
  std::printf("RSS at the end: %s (start %s)\n", MiB(RssKib(pid)).c_str(), MiB(start).c_str());
  coordinator->Stop(SIGTERM);
  return kExitOk;
}

}  // namespace
}  // namespace churnlab

int main(int argc, char** argv) { return churnlab::Main(argc, argv); }
