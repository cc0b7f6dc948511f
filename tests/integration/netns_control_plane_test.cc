// The four-tuple story end to end, in a network namespace of the test's own with 1,000 ephemeral
// ports and no TIME_WAIT reuse: the coordinator, a target and five agents run there; one source
// IP runs out of ports in about five seconds, four carry the same load, and the report says why.
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "churnlab/v1/report.pb.h"
#include "gtest/gtest.h"
#include "tests/support/netns_lab.h"

namespace churnlab {
namespace {

class NetnsControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces (ip netns add)";
    absl::StatusOr<std::unique_ptr<testing::NetnsLab>> lab = testing::NetnsLab::Create("cp", true);
    ASSERT_TRUE(lab.ok()) << lab.status();
    lab_ = std::move(*lab);
    ASSERT_TRUE(lab_->StartCoordinator().ok());
    absl::StatusOr<testing::TargetProcess> target = lab_->StartTarget({});
    ASSERT_TRUE(target.ok()) << target.status();
    target_.emplace(std::move(*target));
    for (int i = 1; i <= 5; ++i) {
      ASSERT_TRUE(lab_->StartAgent(absl::StrCat("a", i), absl::StrCat("127.0.0.", i + 1)).ok());
    }
  }

  // `churnlab COMMAND` at 200 conn/s for 8 s with an error-rate threshold.
  int Churnlab(const std::string& command, const std::string& agents,
               google::protobuf::Message* report) {
    return lab_->Churnlab(command,
                          {"--target=" + target_->address.ToString(), "--rate=200", "--duration=8s",
                           "--agents=" + agents, "--threshold=error_rate < 0.01"},
                          report);
  }

  std::unique_ptr<testing::NetnsLab> lab_;
  std::optional<testing::TargetProcess> target_;
};

TEST_F(NetnsControlPlaneTest, OneSourceHitsThePortLimitFourSourcesDoNot) {
  v1::RunReport single;
  ASSERT_EQ(Churnlab("run", "a1", &single), 1) << lab_->output();  // the threshold fails
  const v1::SourceReport& source = single.agents(0).sources(0);
  EXPECT_EQ(source.ip(), "127.0.0.2");
  EXPECT_EQ(source.attempted() + single.totals().late_starts(), 1600u);
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
  EXPECT_NE(lab_->output().find("tuple budget"), std::string::npos);
  EXPECT_NE(lab_->output().find("warning: agent a1"), std::string::npos);
  EXPECT_GE(single.kernel_counters().at("ActiveOpens"), 990);

  v1::RunReport spread;
  ASSERT_EQ(Churnlab("run", "a2,a3,a4,a5", &spread), 0) << lab_->output();
  EXPECT_EQ(spread.totals().attempted() + spread.totals().late_starts(), 1600u);
  EXPECT_GE(spread.totals().attempted(), 1568u);
  EXPECT_EQ(spread.totals().failed(), 0u);
  ASSERT_EQ(spread.agents_size(), 4);
  for (const v1::AgentReport& agent : spread.agents()) {
    EXPECT_NEAR(agent.sources(0).attempted(), 400, 8) << agent.name();
    EXPECT_LT(agent.sources(0).peak_ports_in_use(), 500u) << agent.name();
  }
  // Each source's 1,000 ports less those bind() had taken in the lab's namespace when the run
  // started (the listeners of the target and coordinator, as the agents asked the kernel).
  double expected = 0;
  for (const v1::AgentReport& agent : spread.agents()) {
    EXPECT_TRUE(agent.ports_at_start().bind_taken_known()) << agent.name();
    EXPECT_LE(agent.ports_at_start().bind_taken(), agent.ports_at_start().listening() + 8)
        << agent.name();
    expected += (1000.0 - static_cast<double>(agent.ports_at_start().bind_taken())) / 60;
  }
  EXPECT_NEAR(spread.tuple_budget().total_rate(), expected, 0.01);
  EXPECT_NEAR(spread.tuple_budget().total_rate(), 4 * 1000.0 / 60, 1.0);
}

TEST_F(NetnsControlPlaneTest, CompareShowsBothRunsSideBySideAndSaysWhy) {
  v1::CompareReport compare;
  // The spread run decides the exit code: it passes.
  ASSERT_EQ(Churnlab("compare", "a1,a2,a3,a4,a5", &compare), 0) << lab_->output();
  const v1::RunReport& single = compare.single();
  const v1::RunReport& spread = compare.distributed();
  ASSERT_EQ(single.agents_size(), 1);
  EXPECT_EQ(single.agents(0).name(), "a1");
  EXPECT_GE(single.errors().at("EADDRNOTAVAIL"), 500u);
  EXPECT_EQ(single.verdict(), v1::RunReport::VERDICT_FAIL);
  // The single run's source is left out of the spread run: its ports are in TIME_WAIT.
  ASSERT_EQ(spread.agents_size(), 4);
  for (const v1::AgentReport& agent : spread.agents()) EXPECT_NE(agent.name(), "a1");
  EXPECT_EQ(spread.totals().failed(), 0u);
  EXPECT_EQ(spread.verdict(), v1::RunReport::VERDICT_PASS);
  ASSERT_GE(compare.summary_size(), 3);
  EXPECT_NE(compare.summary(0).find("ports ran out"), std::string::npos) << compare.summary(0);
  EXPECT_NE(lab_->output().find("single source"), std::string::npos);
  EXPECT_NE(lab_->output().find("tuple budget"), std::string::npos);
}

TEST_F(NetnsControlPlaneTest, AgentsTellTheCoordinatorWhenTheirSettingsChange) {
  auto agents = [&] {
    absl::StatusOr<testing::CommandResult> r = lab_->Command({"agents"});
    return r.ok() ? r->output : "";
  };
  for (int i = 0; i < 100 && agents().find("40000-40999") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(agents().find("40000-40999"), std::string::npos) << agents();
  ASSERT_TRUE(lab_->SetSysctl("net.ipv4.ip_local_port_range", "41000 44999").ok());
  // Every agent re-reads its settings once a second and sends a new hello when they changed.
  std::string seen = agents();
  for (int i = 0; i < 50 && seen.find("40000-40999") != std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    seen = agents();
  }
  EXPECT_EQ(seen.find("40000-40999"), std::string::npos) << seen;
  EXPECT_NE(seen.find("41000-44999"), std::string::npos) << seen;
}

}  // namespace
}  // namespace churnlab
