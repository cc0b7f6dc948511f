// The control plane end to end with the real binaries on loopback: a coordinator, three agents
// with their own 127.x source IPs, a target, and the churnlab CLI.
#include <arpa/inet.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "churnlab/v1/control.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/message_json.h"
#include "tests/support/source_path.h"
#include "tests/support/target_process.h"

namespace churnlab {
namespace {

using testing::BinaryPath;
using testing::ChildProcess;
using testing::RunCommand;

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    StartCoordinator("127.0.0.1:0");
    absl::StatusOr<testing::TargetProcess> target = testing::StartTarget({});
    ASSERT_TRUE(target.ok()) << target.status();
    target_.emplace(std::move(*target));
    for (int i = 2; i <= 4; ++i)
      StartAgent(absl::StrCat("a", i), {absl::StrCat("--source-ips=127.0.0.", i)});
    ASSERT_TRUE(WaitForAgents(3));
  }

  void StartCoordinator(const std::string& listen) {
    std::string address_file = dir_ + "/coordinator.addr";
    std::string http_file = dir_ + "/http.addr";
    unlink(address_file.c_str());
    unlink(http_file.c_str());
    absl::StatusOr<ChildProcess> c =
        ChildProcess::Start({BinaryPath("churnlab-coordinator"), "--grpc-listen=" + listen,
                             "--db=" + dir_ + "/runs.db", "--address-file=" + address_file,
                             "--http-listen=127.0.0.1:0", "--http-address-file=" + http_file});
    ASSERT_TRUE(c.ok());
    coordinator_.emplace(std::move(*c));
    absl::StatusOr<std::string> address = testing::WaitForFile(address_file, absl::Seconds(10));
    ASSERT_TRUE(address.ok()) << coordinator_->Output();
    address_ = *address;
    http_address_ = *testing::WaitForFile(http_file, absl::Seconds(10));
    stub_ = v1::Control::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  void StartAgent(const std::string& name, std::vector<std::string> flags) {
    std::vector<std::string> argv = {BinaryPath("churnlab-agent"), "--coordinator=" + address_,
                                     "--name=" + name};
    argv.insert(argv.end(), flags.begin(), flags.end());
    absl::StatusOr<ChildProcess> agent = ChildProcess::Start(argv);
    ASSERT_TRUE(agent.ok());
    agents_.push_back(std::move(*agent));
  }

  std::vector<v1::AgentInfo> Agents() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::ListAgentsResponse response;
    stub_->ListAgents(&context, v1::ListAgentsRequest(), &response);
    return {response.agents().begin(), response.agents().end()};
  }

  bool WaitForAgents(size_t n) {
    for (int i = 0; i < 300; ++i) {
      if (Agents().size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::vector<v1::RunSummary> Runs() {
    grpc::ClientContext context;
    v1::ListRunsResponse response;
    grpc::Status status = stub_->ListRuns(&context, v1::ListRunsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.runs().begin(), response.runs().end()};
  }

  testing::CommandResult Churnlab(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath("churnlab"), args[0], "--coordinator=" + address_};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    absl::StatusOr<testing::CommandResult> r = RunCommand(argv, absl::Seconds(60));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing::CommandResult{-1, ""};
  }

  v1::RunReport ReadReport(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    v1::RunReport report;
    EXPECT_TRUE(ParseMessageJson(text.str(), &report).ok()) << text.str();
    return report;
  }

  std::string dir_;
  std::string address_;
  std::string http_address_;
  std::optional<ChildProcess> coordinator_;
  std::optional<testing::TargetProcess> target_;
  std::vector<ChildProcess> agents_;
  std::unique_ptr<v1::Control::Stub> stub_;
};

void ExpectNumbersAddUp(const v1::RunReport& r) {
  uint64_t attempted = 0;
  for (const v1::AgentReport& agent : r.agents()) {
    for (const v1::SourceReport& s : agent.sources()) {
      EXPECT_EQ(s.attempted(), s.succeeded() + s.failed()) << agent.name() << " " << s.ip();
      uint64_t errors = 0;
      for (const auto& [key, count] : s.errors()) errors += count;
      EXPECT_EQ(errors, s.failed());
      attempted += s.attempted();
    }
  }
  EXPECT_EQ(attempted, r.totals().attempted());
  EXPECT_EQ(r.totals().attempted(), r.totals().succeeded() + r.totals().failed());
}

TEST_F(ControlPlaneTest, ARunSplitsAcrossAgentsAndItsTotalsMatchTheTarget) {
  std::string report_path = dir_ + "/report.json";
  testing::CommandResult run =
      Churnlab({"run", "--target=" + target_->address.ToString(), "--rate=600", "--duration=2s",
                "--threshold=error_rate < 0.01", "--report=" + report_path});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("verdict pass"), std::string::npos) << run.output;
  v1::RunReport report = ReadReport(report_path);
  std::map<std::string, uint64_t> served = target_->StopAndReadCounters();
  EXPECT_EQ(report.state(), v1::RunReport::STATE_COMPLETED);
  const v1::Totals& totals = report.totals();
  EXPECT_EQ(totals.attempted() + totals.late_starts() + totals.missed_starts(), 1200u);
  EXPECT_GE(totals.attempted(), 900u);  // late starts on a busy machine: three quarters made
  EXPECT_EQ(report.totals().succeeded(), served["answered"]);
  ExpectNumbersAddUp(report);
  ASSERT_EQ(report.agents_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(report.agents(i).name(), absl::StrCat("a", i + 2));
    ASSERT_EQ(report.agents(i).sources_size(), 1);
    EXPECT_EQ(report.agents(i).sources(0).ip(), absl::StrCat("127.0.0.", i + 2));
    // A third of the rate each: 400 starts, fewer made when a busy machine made some late (each
    // agent's own engine, so one can be held off more than another; the report does not split
    // late starts by agent, so three quarters of its share is the floor).
    EXPECT_LE(report.agents(i).sources(0).attempted(), 408u);
    EXPECT_GE(report.agents(i).sources(0).attempted(), 300u);
  }
  EXPECT_GE(report.series_size(), 2);

  // The stored run reads back through `churnlab report`, in every format.
  testing::CommandResult csv = Churnlab({"report", report.run_id(), "--format=csv"});
  EXPECT_EQ(csv.exit_code, 0);
  EXPECT_EQ(csv.output.rfind("t_s,interval_s,attempted", 0), 0u) << csv.output;
  testing::CommandResult json = Churnlab({"report", report.run_id(), "--format=json"});
  EXPECT_NE(json.output.find("\"verdict\": \"pass\""), std::string::npos);
  testing::CommandResult html = Churnlab({"report", report.run_id(), "--format=html"});
  EXPECT_EQ(html.exit_code, 0);
  EXPECT_EQ(html.output.rfind("<!doctype html>", 0), 0u);
  EXPECT_EQ(Churnlab({"report", "r-nope"}).exit_code, 2);
  // Several runs, in every format: HTML side by side, text and CSV a row each, JSON a list.
  testing::CommandResult both =
      Churnlab({"report", report.run_id(), report.run_id(), "--format=html"});
  EXPECT_NE(both.output.find("2 runs side by side"), std::string::npos);
  testing::CommandResult rows = Churnlab({"report", report.run_id(), report.run_id()});
  ASSERT_EQ(rows.exit_code, 0) << rows.output;
  std::vector<std::string> lines = absl::StrSplit(rows.output, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 3u) << rows.output;
  EXPECT_EQ(lines[0].rfind("run ", 0), 0u) << rows.output;
  for (int i : {1, 2}) {
    EXPECT_EQ(lines[i].rfind(report.run_id(), 0), 0u) << rows.output;
    EXPECT_NE(lines[i].find(" pass "), std::string::npos) << rows.output;
    EXPECT_LE(lines[i].size(), 100u) << lines[i];
  }
  testing::CommandResult csv_rows =
      Churnlab({"report", report.run_id(), report.run_id(), "--format=csv"});
  lines = absl::StrSplit(csv_rows.output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << csv_rows.output;
  EXPECT_EQ(lines[0].rfind("run_id,name,state,verdict,", 0), 0u) << csv_rows.output;
  EXPECT_NE(lines[0].find("connect_p50_ms,connect_p90_ms,connect_p99_ms,connect_max_ms"),
            std::string::npos);
  EXPECT_EQ(lines[1].rfind(absl::StrCat(report.run_id(), ","), 0), 0u) << csv_rows.output;
  testing::CommandResult list =
      Churnlab({"report", report.run_id(), report.run_id(), "--format=json"});
  EXPECT_EQ(list.output.rfind("{\"runs\": [", 0), 0u) << list.output.substr(0, 200);
  const std::string id_field = absl::StrCat("\"run_id\": \"", report.run_id(), "\"");
  EXPECT_NE(list.output.find(id_field, list.output.find(id_field) + 1), std::string::npos);
  // --runs: the same shape for a list of one, so a script's "$@" reads alike at any length.
  testing::CommandResult one = Churnlab({"report", report.run_id(), "--format=csv", "--runs"});
  EXPECT_EQ(one.output.rfind("run_id,name,state,verdict,", 0), 0u) << one.output;
}

TEST_F(ControlPlaneTest, CancelStopsTheRunMidWayAndKeepsItsData) {
  absl::StatusOr<ChildProcess> run =
      ChildProcess::Start({BinaryPath("churnlab"), "run", "--coordinator=" + address_,
                           "--target=" + target_->address.ToString(), "--rate=300",
                           "--duration=60s", "--report=" + dir_ + "/cancelled.json"});
  ASSERT_TRUE(run.ok());
  std::string run_id;
  for (int i = 0; i < 100 && run_id.empty(); ++i) {
    for (const v1::RunSummary& r : Runs()) {
      if (r.state() == v1::RunReport::STATE_RUNNING) run_id = r.run_id();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(run_id.empty());
  // Cancelled once it has data to keep: 300 connections made, by the coordinator's live count
  // (a second of the rate on a quiet machine; a busy one made 240 in 2 s of wall time).
  uint64_t made = 0;
  for (int i = 0; i < 200 && made < 300; ++i) {
    grpc::ClientContext context;
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    v1::GetRunResponse live;
    if (stub_->GetRun(&context, request, &live).ok()) made = live.report().totals().succeeded();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(made, 300u);
  testing::CommandResult cancel = Churnlab({"cancel", run_id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.output;
  absl::StatusOr<int> code = run->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << run->Output();
  EXPECT_EQ(*code, 1) << run->Output();
  v1::RunReport report = ReadReport(dir_ + "/cancelled.json");
  EXPECT_EQ(report.state(), v1::RunReport::STATE_CANCELLED);
  EXPECT_GE(report.totals().succeeded(), made);
  EXPECT_LT(report.duration_s(), 30);  // of the 60 it asked
  ExpectNumbersAddUp(report);
  EXPECT_EQ(Churnlab({"cancel", run_id}).exit_code, 3);  // already ended
}

TEST_F(ControlPlaneTest, ARestartedCoordinatorKeepsFinishedRunsAndAgentsComeBack) {
  testing::CommandResult run =
      Churnlab({"run", "--target=" + target_->address.ToString(), "--rate=100", "--duration=1s"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::vector<v1::RunSummary> before = Runs();
  ASSERT_EQ(before.size(), 1u);
  std::string address = address_;
  EXPECT_EQ(coordinator_->Stop(SIGTERM), 0);
  StartCoordinator(address);  // same port: the agents redial it
  std::vector<v1::RunSummary> after = Runs();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].run_id(), before[0].run_id());
  EXPECT_EQ(after[0].state(), v1::RunReport::STATE_COMPLETED);
  EXPECT_TRUE(WaitForAgents(3)) << "agents did not reattach";
}

TEST_F(ControlPlaneTest, AgentsEnforceTheirOwnLimitsAndSaySo) {
  StartAgent("capped", {"--source-ips=127.0.0.5", "--max-rate=10", "--max-in-flight=5"});
  StartAgent("fenced", {"--source-ips=127.0.0.6", "--allow-targets=127.0.0.99/32"});
  ASSERT_TRUE(WaitForAgents(5));
  // The coordinator sees the allow-list in the hello and refuses before any traffic.
  testing::CommandResult fenced = Churnlab({"run", "--target=" + target_->address.ToString(),
                                            "--rate=5", "--duration=1s", "--agents=fenced"});
  EXPECT_EQ(fenced.exit_code, 3);
  EXPECT_NE(fenced.output.find("outside the allowed targets 127.0.0.99/32"), std::string::npos)
      << fenced.output;
  // The rate cap is the agent's own, and its hello says it: the coordinator refuses a share
  // above it before any traffic, as for the allow-list (the agent would refuse it too).
  testing::CommandResult capped = Churnlab({"run", "--target=" + target_->address.ToString(),
                                            "--rate=100", "--duration=1s", "--agents=capped"});
  EXPECT_EQ(capped.exit_code, 3) << capped.output;
  EXPECT_NE(capped.output.find("agent capped: its share, 100.0 conn/s, is above its --max-rate"),
            std::string::npos)
      << capped.output;
  // So is its cap on connections in flight, in the closed model too.
  testing::CommandResult crowded =
      Churnlab({"run", "--target=" + target_->address.ToString(), "--concurrency=10",
                "--duration=1s", "--agents=capped"});
  EXPECT_EQ(crowded.exit_code, 3) << crowded.output;
  EXPECT_NE(crowded.output.find("concurrency 10, is above its --max-in-flight 5"),
            std::string::npos)
      << crowded.output;
  // The closed model has no rate to refuse: the agent paces it under its cap. Two connections
  // at a time with RST close would otherwise make thousands a second.
  testing::CommandResult paced =
      Churnlab({"run", "--target=" + target_->address.ToString(), "--concurrency=2", "--close=rst",
                "--duration=2s", "--agents=capped", "--threshold=error_rate < 1"});
  EXPECT_EQ(paced.exit_code, 0) << paced.output;
  uint64_t accepted = target_->StopAndReadCounters()["accepted"];
  EXPECT_GE(accepted, 15u);
  EXPECT_LE(accepted, 21u);  // 10/s for 2 s, the first at 0; none from the refused runs
}

TEST_F(ControlPlaneTest, BadInputIsRefusedBeforeAnyTraffic) {
  std::string spec = dir_ + "/bad.json";
  std::ofstream(spec) << R"({"targets": [")" << target_->address.ToString()
                      << R"("], "rate": 10, "duration": "1s", "colse_policy": "rst"})";
  testing::CommandResult unknown = Churnlab({"run", "--spec=" + spec});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("colse_policy"), std::string::npos) << unknown.output;
  testing::CommandResult negative =
      Churnlab({"run", "--target=" + target_->address.ToString(), "--rate=-4", "--duration=1s"});
  EXPECT_EQ(negative.exit_code, 2);
  EXPECT_NE(negative.output.find("rate"), std::string::npos);
  testing::CommandResult absurd =
      Churnlab({"run", "--target=" + target_->address.ToString(), "--rate=1e15", "--duration=1s"});
  EXPECT_EQ(absurd.exit_code, 2);
  EXPECT_EQ(Churnlab({"run", "--duration=1s", "--rate=5"}).exit_code, 2);  // no target
  EXPECT_EQ(target_->StopAndReadCounters()["accepted"], 0u);
}

TEST_F(ControlPlaneTest, GarbageOnTheGrpcPortDoesNotHurtTheCoordinator) {
  absl::StatusOr<SocketAddress> address = SocketAddress::ParseIpPort(address_);
  ASSERT_TRUE(address.ok());
  for (int i = 0; i < 20; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(fd, address->sockaddr_ptr(), address->length()), 0);
    std::string junk(4096, static_cast<char>(i * 37));
    [[maybe_unused]] ssize_t n = write(fd, junk.data(), junk.size());
    close(fd);
  }
  EXPECT_EQ(Agents().size(), 3u);
  testing::CommandResult agents = Churnlab({"agents"});
  EXPECT_EQ(agents.exit_code, 0);
  EXPECT_NE(agents.output.find("127.0.0.3"), std::string::npos);
  testing::CommandResult named = Churnlab({"agents", "a3"});
  EXPECT_EQ(named.exit_code, 0);
  EXPECT_NE(named.output.find("127.0.0.3"), std::string::npos) << named.output;
  EXPECT_EQ(named.output.find("127.0.0.2"), std::string::npos) << named.output;
  // A name no agent answers to is bad input, said with the agents there are.
  testing::CommandResult unknown = Churnlab({"agents", "a3", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("no agent named nosuch (known: "), std::string::npos)
      << unknown.output;
  for (const char* name : {"a2", "a3", "a4"}) {
    EXPECT_NE(unknown.output.find(name), std::string::npos) << unknown.output;
  }
  // A report path that cannot be written stops the run before it starts.
  testing::CommandResult unwritable =
      Churnlab({"run", "--target=" + target_->address.ToString(), "--rate=100", "--duration=1s",
                "--report=/nonexistent/r.json"});
  EXPECT_EQ(unwritable.exit_code, 2) << unwritable.output;
  EXPECT_NE(unwritable.output.find(
                "--report=/nonexistent/r.json: cannot write a file there: No such file"),
            std::string::npos)
      << unwritable.output;
  EXPECT_EQ(unwritable.output.find("run r-"), std::string::npos) << unwritable.output;
}

TEST_F(ControlPlaneTest, TheHttpApiServesTheSameRunsAndShrugsOffGarbage) {
  std::string report_path = dir_ + "/report.json";
  ASSERT_EQ(Churnlab({"run", "--target=" + target_->address.ToString(), "--rate=100",
                      "--duration=1s", "--report=" + report_path, "--tag=suite=http"})
                .exit_code,
            0);
  v1::RunReport report = ReadReport(report_path);
  EXPECT_EQ(report.spec().tags().at("suite"), "http");
  absl::StatusOr<SocketAddress> http = SocketAddress::ParseIpPort(http_address_);
  ASSERT_TRUE(http.ok()) << http_address_;
  // Garbage first: the API must keep serving.
  for (int i = 0; i < 10; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(fd, http->sockaddr_ptr(), http->length()), 0);
    std::string junk = i % 2 ? std::string(70000, 'x') : "GET /\x01\x02 HTTP/9.9\r\n\r\n";
    [[maybe_unused]] ssize_t n = write(fd, junk.data(), junk.size());
    close(fd);
  }
  httplib::Client client(http->IpString(), http->port());
  auto runs = client.Get("/api/runs");
  ASSERT_TRUE(runs);
  EXPECT_EQ(runs->status, 200);
  EXPECT_NE(runs->body.find(report.run_id()), std::string::npos);
  auto one = client.Get("/api/runs/" + report.run_id());
  ASSERT_TRUE(one);
  v1::RunReport via_http;
  ASSERT_TRUE(ParseMessageJson(one->body, &via_http).ok());
  EXPECT_EQ(via_http.totals().succeeded(), report.totals().succeeded());
  auto csv = client.Get("/api/runs/" + report.run_id() + "/series.csv");
  ASSERT_TRUE(csv);
  EXPECT_EQ(csv->body.rfind("t_s,", 0), 0u);
  auto missing = client.Get("/api/runs/r-none");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  // Runs by tag, and the HTML report as a download.
  auto tagged = client.Get("/api/runs?tag=suite=http");
  ASSERT_TRUE(tagged);
  EXPECT_NE(tagged->body.find(report.run_id()), std::string::npos);
  EXPECT_NE(tagged->body.find("\"suite\": \"http\""), std::string::npos) << tagged->body;
  auto untagged = client.Get("/api/runs?tag=suite=other");
  ASSERT_TRUE(untagged);
  EXPECT_EQ(untagged->body.find(report.run_id()), std::string::npos);
  EXPECT_EQ(client.Get("/api/runs?tag=bad")->status, 400);
  testing::CommandResult listed = Churnlab({"runs", "--tag=suite=http"});
  EXPECT_NE(listed.output.find("[suite=http]"), std::string::npos) << listed.output;
  EXPECT_EQ(Churnlab({"runs", "--tag=suite=other"}).output, "no runs\n");
  EXPECT_EQ(Churnlab({"runs", "--tag=nokey"}).exit_code, 2);
  auto html = client.Get("/api/runs/" + report.run_id() + "/report.html");
  ASSERT_TRUE(html);
  EXPECT_EQ(html->status, 200);
  EXPECT_EQ(html->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(html->get_header_value("Content-Disposition").find(report.run_id()), std::string::npos);
  EXPECT_NE(html->body.find(report.run_id()), std::string::npos);
  auto two = client.Get("/api/report.html?runs=" + report.run_id() + "," + report.run_id());
  ASSERT_TRUE(two);
  EXPECT_NE(two->body.find("2 runs side by side"), std::string::npos);
  EXPECT_EQ(client.Get("/api/report.html?runs=")->status, 400);
  EXPECT_EQ(client.Get("/api/report.html?runs=r-none")->status, 404);
  auto agents = client.Get("/api/agents");
  ASSERT_TRUE(agents);
  EXPECT_NE(agents->body.find("127.0.0.4"), std::string::npos);
  EXPECT_NE(agents->body.find("\"source_ips_total\": 1"), std::string::npos) << agents->body;
  // One agent in full by name; a name no agent has lists none.
  auto named = client.Get("/api/agents?name=a4");
  ASSERT_TRUE(named);
  EXPECT_NE(named->body.find("127.0.0.4"), std::string::npos) << named->body;
  EXPECT_EQ(named->body.find("127.0.0.3"), std::string::npos) << named->body;
  EXPECT_EQ(client.Get("/api/agents?name=nobody")->body.find("127.0.0."), std::string::npos);
}

// A loopback port nothing listens on: connections to it are refused.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), length);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length);
  close(fd);
  return ntohs(a.sin_port);
}

// xmllint on a JUnit file: validation against tests/cli/junit.xsd, or an XPath's value.
std::string Xmllint(std::vector<std::string> args) {
  args.insert(args.begin(), "xmllint");
  absl::StatusOr<testing::CommandResult> r = RunCommand(args);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << r->output;
  std::string out = r->output;
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}
const std::string kJunitSchema = testing::SourcePath("/tests/cli/junit.xsd");

// `run --junit` on a real run with failures: a file CI readers take, with a test case for the
// run's completion and one per threshold, the failed one carrying its observed value and rule.
// The same run's CSV has a column per phase and errno adding up to the report's errors, and
// absolute times that are the relative ones after the run's start.
// Downloads have a thread and a short queue of their own: 30 heavy ones at once (16 reports side
// by side each) do not hold up a JSON call made while they wait, which answers before most of them
// (it used to wait behind them all, then get 503).
TEST_F(ControlPlaneTest, DownloadsDoNotHoldUpTheJsonRoutes) {
  std::string report_path = dir_ + "/report.json";
  ASSERT_EQ(Churnlab({"run", "--target=" + target_->address.ToString(), "--rate=100",
                      "--duration=1s", "--report=" + report_path})
                .exit_code,
            0);
  const std::string id = ReadReport(report_path).run_id();
  std::string runs = id;
  for (int i = 1; i < 16; ++i) absl::StrAppend(&runs, ",", id);
  absl::StatusOr<SocketAddress> http = SocketAddress::ParseIpPort(http_address_);
  ASSERT_TRUE(http.ok()) << http_address_;
  std::atomic<int> downloaded{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> downloads;
  for (int i = 0; i < 30; ++i) {
    downloads.emplace_back([&] {
      httplib::Client client(http->IpString(), http->port());
      client.set_read_timeout(60, 0);
      auto res = client.Get("/api/report.html?runs=" + runs);
      if (res && res->status == 200) downloaded.fetch_add(1);
      if (res && res->status == 503) refused.fetch_add(1);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let them queue
  httplib::Client client(http->IpString(), http->port());
  auto agents = client.Get("/api/agents");
  const int done_when_answered = downloaded.load();
  for (std::thread& t : downloads) t.join();
  ASSERT_TRUE(agents);
  EXPECT_EQ(agents->status, 200);
  EXPECT_EQ(downloaded + refused, 30);
  EXPECT_LT(done_when_answered, 20) << "the JSON call waited behind the downloads";
  std::printf("downloads done when /api/agents answered: %d (of %d served, %d refused busy)\n",
              done_when_answered, downloaded.load(), refused.load());
}

TEST_F(ControlPlaneTest, JunitAndCsvOfARunWithFailures) {
  const std::string junit = dir_ + "/junit.xml";
  const std::string report_path = dir_ + "/report.json";
  testing::CommandResult run = Churnlab(
      {"run", absl::StrCat("--target=", target_->address.ToString(), ",127.0.0.1:", ClosedPort()),
       "--rate=200", "--duration=2s", "--name=results", "--threshold=error_rate < 0.1",
       "--threshold=achieved_rate >= 1", "--report=" + report_path, "--junit=" + junit});
  EXPECT_EQ(run.exit_code, 1) << run.output;  // half the connections are refused
  v1::RunReport report = ReadReport(report_path);
  ASSERT_GT(report.errors().at("ECONNREFUSED"), 0u);
  Xmllint({"--noout", "--schema", kJunitSchema, junit});
  EXPECT_EQ(Xmllint({"--xpath", "count(//testcase)", junit}), "3");
  EXPECT_EQ(Xmllint({"--xpath", "string(//testsuite/@failures)", junit}), "1");
  EXPECT_EQ(Xmllint({"--xpath", "string(//testsuite/@name)", junit}), "churnlab run results");
  EXPECT_EQ(
      Xmllint({"--xpath", "string(//testcase[@name='threshold error_rate < 0.1']/failure/@message)",
               junit}),
      absl::StrFormat("observed %.3g%%, limit < 10%%; the rule is error_rate < 0.1",
                      report.thresholds(0).observed() * 100));
  // The suite says why the verdict is what it is, as the report does.
  EXPECT_EQ(Xmllint({"--xpath", "string(//property[@name='verdict_reasons']/@value)", junit}),
            absl::StrJoin(report.verdict_reasons(), " | "));
  EXPECT_NE(
      absl::StrJoin(report.verdict_reasons(), " | ").find("threshold error_rate < 0.1 failed"),
      std::string::npos);

  testing::CommandResult csv = Churnlab({"report", report.run_id(), "--format=csv"});
  ASSERT_EQ(csv.exit_code, 0);
  std::vector<std::string> lines = absl::StrSplit(csv.output, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 3u) << csv.output;
  std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  std::map<std::string, size_t> column;
  for (size_t i = 0; i < header.size(); ++i) column[header[i]] = i;
  ASSERT_EQ(column.count("connect_ECONNREFUSED"), 1u) << lines[0];
  uint64_t refused = 0;
  uint64_t failed = 0;
  absl::Time start;
  std::string error;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, report.started_at(), &start, &error));
  for (size_t row = 1; row < lines.size(); ++row) {
    std::vector<std::string> cells = absl::StrSplit(lines[row], ',');
    ASSERT_EQ(cells.size(), header.size()) << lines[row];
    refused += std::stoull(cells[column["connect_ECONNREFUSED"]]);
    // The per-phase columns follow the fixed ones, of which tls_resumed is the last.
    for (size_t i = column["tls_resumed"] + 1; i < cells.size(); ++i) {
      failed += std::stoull(cells[i]);
    }
    // An interval with connections made has their latencies, p50 <= p99 <= p99.9.
    if (std::stoull(cells[column["succeeded"]]) > 0) {
      EXPECT_GT(std::stod(cells[column["total_p50_ms"]]), 0) << lines[row];
      EXPECT_LE(std::stod(cells[column["total_p99_ms"]]), std::stod(cells[column["total_p999_ms"]]))
          << lines[row];
      EXPECT_LE(std::stod(cells[column["connect_p50_ms"]]),
                std::stod(cells[column["connect_p999_ms"]]))
          << lines[row];
    }
    // unix_s is the start plus t_s; the report's started_at is that start to the second.
    double offset = std::stod(cells[column["unix_s"]]) - std::stod(cells[column["t_s"]]);
    EXPECT_NEAR(offset, absl::ToUnixSeconds(start), 1.0) << lines[row];
    absl::Time at;
    ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, cells[column["time"]], &at, &error));
    EXPECT_NEAR(absl::ToUnixMillis(at) / 1e3, std::stod(cells[column["unix_s"]]), 1e-3);
  }
  EXPECT_EQ(refused, report.errors().at("ECONNREFUSED"));
  EXPECT_EQ(failed, report.totals().failed());
}

// `compare --junit`: one suite per run, named for CI to follow from build to build.
TEST_F(ControlPlaneTest, CompareWritesASuitePerRun) {
  const std::string junit = dir_ + "/compare.xml";
  testing::CommandResult compare =
      Churnlab({"compare", "--target=" + target_->address.ToString(), "--rate=50", "--duration=1s",
                "--name=cmp", "--junit=" + junit});
  EXPECT_EQ(compare.exit_code, 0) << compare.output;
  Xmllint({"--noout", "--schema", kJunitSchema, junit});
  EXPECT_EQ(Xmllint({"--xpath", "string(//testsuite[1]/@name)", junit}),
            "churnlab compare cmp: single source");
  EXPECT_EQ(Xmllint({"--xpath", "string(//testsuite[2]/@name)", junit}),
            "churnlab compare cmp: distributed");
  EXPECT_EQ(Xmllint({"--xpath", "string(/testsuites/@failures)", junit}), "0");
}

TEST(ControlPlaneCliTest, AnUnreachableCoordinatorExitsThree) {
  absl::StatusOr<testing::CommandResult> r =
      RunCommand({BinaryPath("churnlab"), "run", "--coordinator=127.0.0.1:1",
                  "--target=127.0.0.1:9", "--rate=1", "--duration=1s"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_NE(r->output.find("127.0.0.1:1"), std::string::npos);
}

}  // namespace
}  // namespace churnlab
