// The conntrack and NAT sentences, on reports shaped as the coordinator builds them (the lab's
// NAT test holds them against the kernel).
#include "analysis/nat_observations.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"

namespace churnlab::analysis {
namespace {

v1::RunReport TwoAgents() {
  v1::RunReport report;
  report.set_requested_rate(200);
  for (const char* name : {"a1", "a2"}) {
    v1::AgentReport* agent = report.add_agents();
    agent->set_name(name);
    agent->set_host(std::string("host-") + name);
    agent->add_sources()->set_ip(std::string("10.0.1.") + (name[1] == '1' ? "1" : "2"));
  }
  return report;
}

std::string Observed(const v1::RunReport& report) {
  std::vector<std::string> out;
  ObserveConntrackAndNat(report, &out);
  return absl::StrJoin(out, "\n");
}

TEST(NatObservationsTest, QuietWithoutConntrackOrNat) {
  v1::RunReport report = TwoAgents();
  EXPECT_EQ(Observed(report), "");
  report.mutable_agents(0)->mutable_conntrack()->set_peak_count(100);
  report.mutable_agents(0)->mutable_conntrack()->set_max(262144);
  v1::ListenReport* listen = report.add_observers()->add_listen();
  listen->add_peer_ips("10.0.1.1");
  listen->add_peer_ips("10.0.1.2");
  EXPECT_EQ(Observed(report), "");
}

TEST(NatObservationsTest, AFullTableSaysWhatItDroppedAndWhatItNeeds) {
  v1::RunReport report = TwoAgents();
  v1::AgentReport* agent = report.mutable_agents(1);
  agent->mutable_conntrack()->set_peak_count(65536);
  agent->mutable_conntrack()->set_max(65536);
  (*agent->mutable_kernel_counters())["ConntrackDrop"] = 812;
  (*agent->mutable_kernel_counters())["ConntrackEarlyDrop"] = 40;
  std::string said = Observed(report);
  EXPECT_TRUE(absl::StrContains(said,
                                "conntrack table on agent a2's host was full: 65536 of "
                                "65536 entries at most"))
      << said;
  EXPECT_TRUE(absl::StrContains(said, "dropped 812 packets of new flows")) << said;
  EXPECT_TRUE(absl::StrContains(said, "evicted 40 entries early")) << said;
  EXPECT_TRUE(absl::StrContains(said, "200 new connections/s need about 24000 entries")) << said;
  EXPECT_TRUE(absl::StrContains(said, "nf_conntrack_max")) << said;
}

TEST(NatObservationsTest, InsertFailuresAreTheNatOutOfPorts) {
  v1::RunReport report = TwoAgents();
  v1::ObserverReport* target = report.add_observers();
  target->set_name("target");
  target->mutable_conntrack()->set_max(262144);
  (*target->mutable_kernel_counters())["ConntrackInsertFailed"] = 11;
  // Each failed insert also dropped its packet: those drops are not a full table's.
  (*target->mutable_kernel_counters())["ConntrackDrop"] = 11;
  std::string said = Observed(report);
  EXPECT_TRUE(absl::StrContains(said, "could not insert 11 new flows")) << said;
  EXPECT_TRUE(absl::StrContains(said, "SNAT port exhaustion")) << said;
  EXPECT_FALSE(absl::StrContains(said, "full")) << said;
}

TEST(NatObservationsTest, PeersThatAreNoAgentsSourceMeanANat) {
  v1::RunReport report = TwoAgents();
  v1::ListenReport* listen = report.add_observers()->add_listen();
  listen->add_peer_ips("192.0.2.9");
  std::string said = Observed(report);
  EXPECT_TRUE(absl::StrContains(said, "come from 192.0.2.9, none of the agents' 2 source")) << said;
  EXPECT_TRUE(absl::StrContains(said, "budget is then the NAT's: its 1 address ")) << said;
  // An agent whose source the kernel picks cannot be told from a NAT: nothing is said.
  report.mutable_agents(0)->mutable_sources(0)->set_ip("auto");
  EXPECT_EQ(Observed(report), "");
}

}  // namespace
}  // namespace churnlab::analysis
