#include "analysis/compare_summary.h"

#include "gtest/gtest.h"

namespace churnlab::analysis {
namespace {

v1::RunReport ReportOf(int sources, double rate, uint64_t no_port, v1::PortLimit limit) {
  v1::RunReport r;
  r.set_requested_rate(rate);
  r.set_achieved_rate(rate - no_port / 8.0);
  r.mutable_totals()->set_failed(no_port);
  if (no_port > 0) {
    (*r.mutable_errors())["EADDRNOTAVAIL"] = no_port;
    v1::SeriesPoint* p = r.add_series();
    p->set_t_s(5);
    (*p->mutable_errors())["EADDRNOTAVAIL"] = 10;
  }
  v1::AgentReport* agent = r.add_agents();
  v1::TupleBudget* b = r.mutable_tuple_budget();
  b->set_time_wait_s(60);
  for (int i = 0; i < sources; ++i) {
    agent->add_sources()->set_ip("10.0.1." + std::to_string(i + 1));
    v1::SourceBudget* s = b->add_sources();
    s->set_ports(1000);
    s->set_destinations(1);
    s->set_budget_rate(1000.0 / 60);
    s->set_requested_rate(rate / sources);
    s->set_limit(limit);
    b->set_total_rate(b->total_rate() + s->budget_rate());
  }
  return r;
}

TEST(CompareSummaryTest, TheSingleSourceRanOutAndTheSpreadDidNot) {
  std::vector<std::string> said = CompareSummary(ReportOf(1, 200, 600, v1::PORT_LIMIT_TIME_WAIT),
                                                 ReportOf(16, 200, 0, v1::PORT_LIMIT_TIME_WAIT));
  ASSERT_GE(said.size(), 3u);
  EXPECT_NE(said[0].find("From one source IP (10.0.1.1) the budget is 17 new connections/s"),
            std::string::npos)
      << said[0];
  EXPECT_NE(said[0].find("its ports ran out after about 5 s: 600 connects failed"),
            std::string::npos)
      << said[0];
  EXPECT_NE(said[2].find("More source IPs multiplied the four-tuples"), std::string::npos);
}

TEST(CompareSummaryTest, ALiftedBudgetIsNotCalledTheLimit) {
  std::vector<std::string> said =
      CompareSummary(ReportOf(1, 200, 0, v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS),
                     ReportOf(4, 200, 0, v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS));
  EXPECT_NE(said[0].find("but tcp_max_tw_buckets is below it"), std::string::npos) << said[0];
  EXPECT_NE(said.back().find("TIME_WAIT did not bound it"), std::string::npos) << said.back();
}

}  // namespace
}  // namespace churnlab::analysis
