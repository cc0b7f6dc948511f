#include "coordinator/source_detail.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace churnlab {
namespace {

// A point of two agents (range 100): a's sources use 0, 2, 4, ... ports, b's 1, 3, 5, ...
v1::SeriesPoint PointOfTwoAgents(int sources_each) {
  v1::SeriesPoint point;
  for (int a = 0; a < 2; ++a) {
    v1::AgentPoint* agent = point.add_agents();
    agent->set_name(a == 0 ? "a" : "b");
    agent->set_port_range_size(100);
    for (int i = 0; i < sources_each; ++i) {
      v1::SourcePoint* s = agent->add_sources();
      s->set_ip(absl::StrCat("10.0.", a, ".", i));
      s->set_ports_in_use(static_cast<uint64_t>(2 * i + a));
    }
  }
  return point;
}

TEST(KeepFullestSourcesTest, KeepsTheFullestInTheirOrderAndCountsTheRest) {
  v1::SeriesPoint point = PointOfTwoAgents(50);  // 100 sources, 0..99 ports
  KeepFullestSources(&point, 10);
  // The ten fullest are 90..99 ports: a's sources 45..49, b's 45..49, each agent's in order.
  ASSERT_EQ(point.agents(0).sources_size(), 5);
  ASSERT_EQ(point.agents(1).sources_size(), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(point.agents(0).sources(i).ip(), absl::StrCat("10.0.0.", 45 + i));
    EXPECT_EQ(point.agents(1).sources(i).ip(), absl::StrCat("10.0.1.", 45 + i));
  }
  EXPECT_EQ(point.agents(0).sources_omitted(), 45u);
  EXPECT_EQ(point.agents(1).sources_omitted(), 45u);
}

TEST(KeepFullestSourcesTest, APointWithinTheLimitIsUnchanged) {
  v1::SeriesPoint point = PointOfTwoAgents(3);
  const std::string before = point.SerializeAsString();
  KeepFullestSources(&point, 6);
  EXPECT_EQ(point.SerializeAsString(), before);
}

TEST(KeepFullestSourcesTest, EqualFillKeepsTheFirst) {
  v1::SeriesPoint point;
  v1::AgentPoint* agent = point.add_agents();
  agent->set_port_range_size(10);
  for (int i = 0; i < 5; ++i) agent->add_sources()->set_ip(absl::StrCat("ip", i));
  KeepFullestSources(&point, 2);
  ASSERT_EQ(agent->sources_size(), 2);
  EXPECT_EQ(agent->sources(0).ip(), "ip0");
  EXPECT_EQ(agent->sources(1).ip(), "ip1");
  EXPECT_EQ(agent->sources_omitted(), 3u);
}

// The viewers' summary of a run of 200 sources: the fullest kMaxViewerSources by peak fill,
// the budget's and held connections' lists following them, the newest point only.
TEST(ViewerSummaryTest, KeepsTheFullestSourcesTheirListsAndTheNewestPoint) {
  v1::RunReport report;
  v1::AgentReport* agent = report.add_agents();
  agent->set_name("a");
  for (int i = 0; i < 200; ++i) {
    const std::string ip = absl::StrCat("10.0.", i / 256, ".", i % 256);
    v1::SourceReport* s = agent->add_sources();
    s->set_ip(ip);
    s->set_port_range_size(1000);
    s->set_peak_ports_in_use(static_cast<uint64_t>(i));
    v1::SourceBudget* b = report.mutable_tuple_budget()->add_sources();
    b->set_agent("a");
    b->set_ip(ip);
    v1::SourceConcurrency* c = report.mutable_concurrency()->add_sources();
    c->set_agent("a");
    c->set_ip(ip);
  }
  for (int t = 1; t <= 3; ++t) report.add_series()->set_t_s(t);
  v1::RunReport summary = ViewerSummary(report);
  ASSERT_EQ(summary.agents(0).sources_size(), static_cast<int>(kMaxViewerSources));
  EXPECT_EQ(summary.agents(0).sources(0).peak_ports_in_use(), 200 - kMaxViewerSources);
  EXPECT_EQ(summary.agents(0).sources_omitted(), 200 - kMaxViewerSources);
  ASSERT_EQ(summary.tuple_budget().sources_size(), static_cast<int>(kMaxViewerSources));
  EXPECT_EQ(summary.tuple_budget().sources(0).ip(), summary.agents(0).sources(0).ip());
  EXPECT_EQ(summary.concurrency().sources_size(), static_cast<int>(kMaxViewerSources));
  ASSERT_EQ(summary.series_size(), 1);
  EXPECT_EQ(summary.series(0).t_s(), 3);
  // A report without a budget gets none.
  v1::RunReport bare;
  bare.add_agents()->set_name("a");
  EXPECT_FALSE(ViewerSummary(bare).has_tuple_budget());
  EXPECT_FALSE(ViewerSummary(bare).has_concurrency());
}

}  // namespace
}  // namespace churnlab
