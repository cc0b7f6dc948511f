// `churnlab compare`'s two pieces of its own: the single-source twin of a spec and the source IP
// the single run used (what the two runs mean side by side is analysis::CompareSummary's test).
#include "cli/compare.h"

#include <google/protobuf/util/message_differencer.h>

#include <string>

#include "gtest/gtest.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

// A spec as compare gets it: parsed from JSON, defaults filled, valid.
v1::RunSpec Spec(const std::string& json) {
  absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(json);
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok()) return v1::RunSpec();
  ApplyRunSpecDefaults(&*spec);
  absl::Status valid = ValidateRunSpec(*spec);
  EXPECT_TRUE(valid.ok()) << valid;
  return *spec;
}

TEST(SingleSourceSpecTest, NarrowsToOneAgentAndOneSourceIpKeepingTheWorkload) {
  const v1::RunSpec spec = Spec(R"({"name": "churn", "targets": ["10.0.0.1:80", "10.0.0.2:80"],
      "rate": 2000, "duration": "30s", "sourceIpsPerAgent": 4, "thresholds": ["error_rate < 0.01"],
      "excludeSourceIps": ["10.0.1.9"]})");
  const v1::RunSpec single = SingleSourceSpec(spec);
  EXPECT_EQ(single.name(), "churn (single source)");
  EXPECT_EQ(single.agents(), 1);
  EXPECT_EQ(single.agent_names_size(), 0);
  EXPECT_EQ(single.source_ips_per_agent(), 1);
  EXPECT_EQ(single.source_ips_size(), 0);
  // The same load, all of it from the one source: nothing else of the spec changes.
  v1::RunSpec rest = single;
  rest.set_name(spec.name());
  rest.set_agents(spec.agents());
  rest.set_source_ips_per_agent(spec.source_ips_per_agent());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(rest, spec)) << rest.DebugString();
  EXPECT_TRUE(ValidateRunSpec(single).ok()) << ValidateRunSpec(single);
}

TEST(SingleSourceSpecTest, AnUnnamedSpecIsCalledSingleSource) {
  const v1::RunSpec single =
      SingleSourceSpec(Spec(R"({"targets": ["10.0.0.1:80"], "rate": 100, "duration": "5s"})"));
  EXPECT_EQ(single.name(), "single source");
}

// Named agents and source IPs: the first of each.
TEST(SingleSourceSpecTest, KeepsTheFirstNamedAgentAndTheFirstListedSourceIp) {
  const v1::RunSpec spec = Spec(R"({"targets": ["10.0.0.1:80"], "concurrency": 50,
      "duration": "10s", "agentNames": ["a2", "a1", "a3"],
      "sourceIps": ["10.0.1.2", "10.0.1.1"], "bindMode": "bind"})");
  const v1::RunSpec single = SingleSourceSpec(spec);
  ASSERT_EQ(single.agent_names_size(), 1);
  EXPECT_EQ(single.agent_names(0), "a2");
  ASSERT_EQ(single.source_ips_size(), 1);
  EXPECT_EQ(single.source_ips(0), "10.0.1.2");
  // The list already says how many: the counts stay unset.
  EXPECT_EQ(single.agents(), 0);
  EXPECT_EQ(single.source_ips_per_agent(), 0);
  EXPECT_EQ(single.concurrency(), 50);
  EXPECT_EQ(single.bind_mode(), v1::BIND_MODE_BIND);
  EXPECT_TRUE(ValidateRunSpec(single).ok()) << ValidateRunSpec(single);
}

// Under bind mode none the kernel picks the address: there is no source IP to narrow to, and
// asking for one would be refused (source_ips_per_agent with bind none).
TEST(SingleSourceSpecTest, BindNoneLeavesTheSourceToTheKernel) {
  const v1::RunSpec single = SingleSourceSpec(
      Spec(R"({"targets": ["10.0.0.1:80"], "rate": 100, "duration": "5s", "bindMode": "none"})"));
  EXPECT_EQ(single.agents(), 1);
  EXPECT_EQ(single.source_ips_per_agent(), 0);
  EXPECT_EQ(single.bind_mode(), v1::BIND_MODE_NONE);
  EXPECT_TRUE(ValidateRunSpec(single).ok()) << ValidateRunSpec(single);
}

TEST(FirstSourceIpTest, TheFirstSourceOfTheFirstAgentThatReportedOne) {
  v1::RunReport report;
  report.add_agents()->set_name("a1");  // no source reported
  v1::AgentReport* a2 = report.add_agents();
  a2->set_name("a2");
  a2->add_sources()->set_ip("10.0.1.7");
  a2->add_sources()->set_ip("10.0.1.8");
  report.add_agents()->add_sources()->set_ip("10.0.2.1");
  EXPECT_EQ(FirstSourceIp(report), "10.0.1.7");
}

TEST(FirstSourceIpTest, EmptyWhenNoSourceWasReported) {
  v1::RunReport report;
  EXPECT_EQ(FirstSourceIp(report), "");
  report.add_agents()->set_name("a1");
  EXPECT_EQ(FirstSourceIp(report), "");
}

}  // namespace
}  // namespace churnlab
