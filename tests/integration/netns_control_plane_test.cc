// The four-tuple story end to end, in a network namespace of the test's own with 1,000 ephemeral
// ports and no TIME_WAIT reuse: the coordinator, a target and five agents run there; one source
// IP runs out of ports in about five seconds, four carry the same load, and the report says why.
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "churnlab/v1/report.pb.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"
#include "tests/support/network_namespace.h"
#include "tests/support/target_process.h"

namespace churnlab {
namespace {

using testing::BinaryPath;
using testing::ChildProcess;

class NetnsControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces (ip netns add)";
    absl::StatusOr<testing::NetworkNamespace> ns = testing::NetworkNamespace::Create("cp");
    ASSERT_TRUE(ns.ok()) << ns.status();
    ns_.emplace(std::move(*ns));
    ASSERT_TRUE(ns_->SetSysctl("net.ipv4.ip_local_port_range", "40000 40999").ok());
    ASSERT_TRUE(ns_->SetSysctl("net.ipv4.tcp_tw_reuse", "0").ok());
    dir_ = testing::MakeTempDir();
    std::string address_file = dir_ + "/coordinator";
    processes_.push_back(*ChildProcess::Start(
        Inside({BinaryPath("churnlab-coordinator"), "--grpc-listen=127.0.0.1:0",
                "--http-listen=", "--db=" + dir_ + "/runs.db", "--address-file=" + address_file})));
    absl::StatusOr<std::string> address = testing::WaitForFile(address_file, absl::Seconds(10));
    ASSERT_TRUE(address.ok());
    coordinator_ = *address;
    absl::StatusOr<testing::TargetProcess> target = testing::StartTarget({}, ns_->ExecPrefix());
    ASSERT_TRUE(target.ok()) << target.status();
    target_.emplace(std::move(*target));
    for (int i = 1; i <= 5; ++i) {
      processes_.push_back(*ChildProcess::Start(
          Inside({BinaryPath("churnlab-agent"), "--coordinator=" + coordinator_,
                  absl::StrCat("--name=a", i), absl::StrCat("--source-ips=127.0.0.", i + 1)})));
    }
  }

  std::vector<std::string> Inside(std::vector<std::string> argv) {
    std::vector<std::string> full = ns_->ExecPrefix();
    full.insert(full.end(), argv.begin(), argv.end());
    return full;
  }

  // Runs `churnlab COMMAND` inside the namespace at 200 conn/s for 8 s with an error-rate
  // threshold; returns the exit code and fills `report` from --report.
  int Churnlab(const std::string& command, const std::string& agents,
               google::protobuf::Message* report) {
    std::string path = dir_ + "/" + command + agents + ".json";
    std::vector<std::string> argv =
        Inside({BinaryPath("churnlab"), command, "--coordinator=" + coordinator_,
                "--target=" + target_->address.ToString(), "--rate=200", "--duration=8s",
                "--agents=" + agents, "--threshold=error_rate < 0.01", "--report=" + path});
    // The agents attach within a few seconds of starting; retry until they have.
    for (int attempt = 0; attempt < 50; ++attempt) {
      absl::StatusOr<testing::CommandResult> r = testing::RunCommand(argv, absl::Seconds(60));
      if (!r.ok()) return -1;
      if (r->exit_code == 3 && r->output.find("agent") != std::string::npos) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      std::ifstream in(path);
      std::stringstream text;
      text << in.rdbuf();
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text.str(), report).ok())
          << r->output;
      output_ = r->output;
      return r->exit_code;
    }
    return -1;
  }

  std::optional<testing::NetworkNamespace> ns_;
  std::string dir_;
  std::string coordinator_;
  std::string output_;
  std::optional<testing::TargetProcess> target_;
  std::vector<ChildProcess> processes_;
};

TEST_F(NetnsControlPlaneTest, OneSourceHitsThePortLimitFourSourcesDoNot) {
  v1::RunReport single;
  ASSERT_EQ(Churnlab("run", "a1", &single), 1) << output_;  // the error-rate threshold fails
  const v1::SourceReport& source = single.agents(0).sources(0);
  EXPECT_EQ(source.ip(), "127.0.0.2");
  EXPECT_EQ(source.attempted(), 1600u);
  EXPECT_LE(source.succeeded(), 1000u);
  EXPECT_GE(single.errors().at("EADDRNOTAVAIL"), 500u);
  EXPECT_EQ(source.port_range_size(), 1000u);
  EXPECT_GE(source.peak_ports_in_use(), 990u);
  EXPECT_GE(source.peak_time_wait(), 990u);
  const v1::TupleBudget& budget = single.tuple_budget();
  EXPECT_NEAR(budget.total_rate(), 1000.0 / 60, 0.1);
  EXPECT_NEAR(budget.sources(0).exhaustion_after_s(), 5, 0.1);
  ASSERT_GE(single.observations_size(), 1);
  EXPECT_NE(single.observations(0).find("EADDRNOTAVAIL"), std::string::npos);
  EXPECT_NE(output_.find("tuple budget"), std::string::npos);
  EXPECT_GE(single.kernel_counters().at("ActiveOpens"), 990);

  v1::RunReport spread;
  ASSERT_EQ(Churnlab("run", "a2,a3,a4,a5", &spread), 0) << output_;
  EXPECT_EQ(spread.totals().attempted(), 1600u);
  EXPECT_EQ(spread.totals().failed(), 0u);
  ASSERT_EQ(spread.agents_size(), 4);
  for (const v1::AgentReport& agent : spread.agents()) {
    EXPECT_EQ(agent.sources(0).attempted(), 400u) << agent.name();
    EXPECT_LT(agent.sources(0).peak_ports_in_use(), 500u) << agent.name();
  }
  EXPECT_NEAR(spread.tuple_budget().total_rate(), 4 * 1000.0 / 60, 0.1);
}

TEST_F(NetnsControlPlaneTest, CompareShowsBothRunsSideBySideAndSaysWhy) {
  v1::CompareReport compare;
  // The spread run is the one that decides the exit code: it passes.
  ASSERT_EQ(Churnlab("compare", "a1,a2,a3,a4,a5", &compare), 0) << output_;
  const v1::RunReport& single = compare.single();
  const v1::RunReport& spread = compare.distributed();
  ASSERT_EQ(single.agents_size(), 1);
  EXPECT_EQ(single.agents(0).name(), "a1");
  EXPECT_GE(single.errors().at("EADDRNOTAVAIL"), 500u);
  EXPECT_EQ(single.verdict(), "fail");
  // The single run's source is left out of the spread run: its ports are in TIME_WAIT.
  ASSERT_EQ(spread.agents_size(), 4);
  for (const v1::AgentReport& agent : spread.agents()) EXPECT_NE(agent.name(), "a1");
  EXPECT_EQ(spread.totals().failed(), 0u);
  EXPECT_EQ(spread.verdict(), "pass");
  ASSERT_GE(compare.summary_size(), 3);
  EXPECT_NE(compare.summary(0).find("ports ran out"), std::string::npos) << compare.summary(0);
  EXPECT_NE(output_.find("single source"), std::string::npos);
  EXPECT_NE(output_.find("tuple budget"), std::string::npos);
}

}  // namespace
}  // namespace churnlab
