// Source IPs from an IPv6 prefix routed to the host rather than assigned to it: in a network
// namespace of the test's own, `ip -6 route add local fd00:7::/64 dev lo` (the AnyIP route), an
// agent started with --source-prefix=fd00:7::/64 --source-count=4, and a run through the
// coordinator to a target on [::1]. The kernel's socket table is the witness that connections
// left from four prefix addresses, none of which is on any interface.
#include <unistd.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "churnlab/v1/report.pb.h"
#include "gtest/gtest.h"
#include "tests/support/netns_lab.h"

namespace churnlab {
namespace {

constexpr char kPrefix[] = "fd00:7::/64";

class NetnsIpv6PrefixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces (ip netns add)";
    absl::StatusOr<std::unique_ptr<testing::NetnsLab>> lab = testing::NetnsLab::Create("v6", false);
    ASSERT_TRUE(lab.ok()) << lab.status();
    lab_ = std::move(*lab);
    // No TIME_WAIT reuse (2, loopback only, is the default and lo carries this traffic): every
    // connection then leaves exactly one TIME_WAIT socket to count.
    ASSERT_TRUE(lab_->SetSysctl("net.ipv4.tcp_tw_reuse", "0").ok());
    // The route lives in the namespace and goes with it.
    absl::StatusOr<testing::CommandResult> route =
        lab_->Exec({"ip", "-6", "route", "add", "local", kPrefix, "dev", "lo"});
    ASSERT_TRUE(route.ok() && route->exit_code == 0) << (route.ok() ? route->output : "");
    ASSERT_TRUE(lab_->StartCoordinator().ok());
    absl::StatusOr<testing::TargetProcess> target = lab_->StartTarget({"--listen=[::1]:0"});
    ASSERT_TRUE(target.ok()) << target.status();
    target_.emplace(std::move(*target));
  }

  // The distinct local IPs of the namespace's TCP sockets in `state` toward the target's port
  // (client sockets keep the TIME_WAIT under client-fin; the control plane's own connections go
  // elsewhere), from `ss`, not from churnlab.
  std::set<std::string> LocalIpsIn(const std::string& state) {
    std::set<std::string> ips;
    absl::StatusOr<testing::CommandResult> ss =
        lab_->Exec({"ss", "-Htan", "state", state, "dport", "=", TargetPort()});
    if (!ss.ok()) return ips;
    for (absl::string_view line : absl::StrSplit(ss->output, '\n', absl::SkipWhitespace())) {
      std::vector<absl::string_view> columns = absl::StrSplit(line, ' ', absl::SkipWhitespace());
      if (columns.size() < 4) continue;
      absl::string_view local = columns[2];  // [fd00:7::1]:40000
      local = local.substr(0, local.rfind(':'));
      absl::ConsumePrefix(&local, "[");
      absl::ConsumeSuffix(&local, "]");
      ips.emplace(local);
    }
    return ips;
  }

  std::string TargetPort() const { return absl::StrCat(":", target_->address.port()); }

  std::unique_ptr<testing::NetnsLab> lab_;
  std::optional<testing::TargetProcess> target_;
};

TEST_F(NetnsIpv6PrefixTest, FourPrefixAddressesCarryTheRunAndTheKernelSaysSo) {
  ASSERT_TRUE(lab_->StartAgentWith("p1", {"--source-prefix=fd00:7::/64", "--source-count=4"}).ok());
  v1::RunReport report;
  ASSERT_EQ(lab_->Churnlab("run",
                           {"--target=" + target_->address.ToString(), "--rate=200",
                            "--duration=3s", "--agents=p1", "--threshold=error_rate < 0.01"},
                           &report),
            0)
      << lab_->output();
  const std::set<std::string> expected = {"fd00:7::1", "fd00:7::2", "fd00:7::3", "fd00:7::4"};
  ASSERT_EQ(report.agents_size(), 1);
  std::set<std::string> reported;
  for (const v1::SourceReport& source : report.agents(0).sources()) {
    reported.insert(source.ip());
    EXPECT_NEAR(source.attempted(), 150, 10) << source.ip();
    EXPECT_EQ(source.failed(), 0u) << source.ip();
  }
  EXPECT_EQ(reported, expected);
  EXPECT_EQ(report.totals().failed(), 0u);
  // Every connection closed client-first: the namespace's TIME_WAIT sockets are the agent's.
  EXPECT_EQ(LocalIpsIn("time-wait"), expected);
  EXPECT_EQ(*lab_->Sockets("time-wait", {"dport", "=", TargetPort()}), report.totals().succeeded());
  // None of them is an address of any interface: the route alone makes them this host's.
  absl::StatusOr<testing::CommandResult> addresses = lab_->Exec({"ip", "-6", "addr", "show"});
  ASSERT_TRUE(addresses.ok());
  EXPECT_EQ(addresses->output.find("fd00:7::"), std::string::npos) << addresses->output;
}

// A cluster's nodes each route their own prefix; one agent spec finds its node's.
TEST_F(NetnsIpv6PrefixTest, PrefixWithinFindsTheHostsOwnPrefix) {
  ASSERT_TRUE(
      lab_->StartAgentWith("p2", {"--source-prefix-within=fd00::/16", "--source-count=2"}).ok());
  v1::RunReport report;
  ASSERT_EQ(lab_->Churnlab("run",
                           {"--target=" + target_->address.ToString(), "--rate=100",
                            "--duration=1s", "--agents=p2"},
                           &report),
            0)
      << lab_->output();
  ASSERT_EQ(report.agents_size(), 1);
  std::set<std::string> reported;
  for (const v1::SourceReport& source : report.agents(0).sources()) reported.insert(source.ip());
  EXPECT_EQ(reported, (std::set<std::string>{"fd00:7::1", "fd00:7::2"}));
  EXPECT_EQ(report.totals().failed(), 0u);
  EXPECT_EQ(LocalIpsIn("time-wait"), reported);
}

TEST_F(NetnsIpv6PrefixTest, APrefixWithoutARouteStopsTheAgentNamingTheFlag) {
  absl::StatusOr<testing::CommandResult> agent =
      lab_->Exec({testing::BinaryPath("churnlab-agent"), "--coordinator=" + lab_->coordinator(),
                  "--source-prefix=fd00:8::/64", "--source-count=4"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_NE(agent->exit_code, 0);
  EXPECT_NE(agent->output.find("--source-prefix=fd00:8::/64"), std::string::npos) << agent->output;
  EXPECT_NE(agent->output.find("ip -6 route add local fd00:8::/64 dev lo"), std::string::npos)
      << agent->output;
}

}  // namespace
}  // namespace churnlab
