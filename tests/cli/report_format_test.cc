// What the text report and compare's table show beside the JSON: each error's Windows words,
// the clients' FIN_WAIT2 beside the server's CLOSE_WAIT, and the requests per connection.
#include "cli/report_format.h"

#include <google/protobuf/util/time_util.h>

#include <string>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "proto/report_export.h"

namespace churnlab {
namespace {

// A run against a server that never closes, 100 requests per connection, out of ports at the
// end: the report as the coordinator builds it.
v1::RunReport LeakingRun(const std::string& id) {
  v1::RunReport r;
  r.set_run_id(id);
  r.set_state(v1::RunReport::STATE_COMPLETED);
  r.mutable_spec()->set_requests_per_connection(100);
  r.mutable_totals()->set_attempted(60);
  r.mutable_totals()->set_succeeded(50);
  r.mutable_totals()->set_failed(10);
  r.mutable_totals()->set_requests(5000);
  r.mutable_totals()->set_requests_per_connection(100);
  (*r.mutable_errors())["EADDRNOTAVAIL"] = 10;
  AddWindowsErrors(&r);
  v1::SourceReport* s = r.add_agents()->add_sources();
  s->set_ip("10.0.1.1");
  s->set_peak_fin_wait2(48);
  v1::ListenReport* l = r.add_observers()->add_listen();
  l->set_address("10.0.0.1:80");
  l->set_peak_close_wait(50);
  return r;
}

void ExpectHas(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
}

TEST(ReportFormatTest, TheTextReportShowsWindowsWordsFinWait2AndRequestsPerConnection) {
  std::string text = FormatReportText(LeakingRun("r-1"));
  ExpectHas(text, "requests 5000, 100.0 (spec 100) per connection");
  ExpectHas(text,
            "on Windows EADDRNOTAVAIL is 10048 WSAEADDRINUSE (SocketError.AddressAlreadyInUse) "
            "\"Only one usage of each socket address (protocol/network address/port) is "
            "normally permitted.\"");
  ExpectHas(text, "peak FW2");
  ExpectHas(text, "CLOSE_WAIT 50 (clients' FIN_WAIT2 48)");
}

// TIME_WAIT and ports come from the socket census; one a busy host left behind says its age.
TEST(ReportFormatTest, TheProgressLineMarksAStaleCensus) {
  v1::RunReport r = LeakingRun("r-1");
  r.set_state(v1::RunReport::STATE_RUNNING);
  v1::SeriesPoint* p = r.add_series();
  p->set_t_s(12);
  p->set_time_wait(900);
  p->set_max_port_fill(0.2);
  p->set_census_age_s(1.5);
  std::string fresh = FormatProgressLine(r);
  ExpectHas(fresh, "ports 20%");
  EXPECT_EQ(fresh.find("census"), std::string::npos) << fresh;
  p->set_census_age_s(9.4);
  ExpectHas(FormatProgressLine(r), "ports 20% (census 9 s old)");
}

// The progress line gives rates, and the interval's failures as counts that say so; past the
// run's end it says the run is over rather than "of 0/s".
TEST(ReportFormatTest, TheProgressLineSaysCountsAndTheRunsEnd) {
  v1::RunReport r = LeakingRun("r-1");
  r.set_requested_rate(100);
  r.mutable_spec()->set_rate(100);
  *r.mutable_spec()->mutable_duration() = google::protobuf::util::TimeUtil::SecondsToDuration(8);
  v1::SeriesPoint* p = r.add_series();
  p->set_t_s(1.1);
  p->set_interval_s(1.07);
  p->set_failed(101);
  (*p->mutable_errors())["ECONNREFUSED"] = 101;
  std::string during = FormatProgressLine(r);
  ExpectHas(during, "(of 100/s)  failed 94/s");
  ExpectHas(during, "[ECONNREFUSED 101 in 1.1s]");
  p->set_t_s(8.1);
  ExpectHas(FormatProgressLine(r), "(run over, finishing)");
  // A stage that asks 0/s mid-run is not the end.
  v1::Stage* pause = r.mutable_spec()->add_stages();
  pause->set_rate(0);
  *pause->mutable_duration() = google::protobuf::util::TimeUtil::SecondsToDuration(8);
  p->set_t_s(4);
  ExpectHas(FormatProgressLine(r), "(of 0/s)");
}

TEST(ReportFormatTest, CompareShowsThemSideBySide) {
  v1::CompareReport c;
  *c.mutable_single() = LeakingRun("r-1");
  *c.mutable_distributed() = LeakingRun("r-2");
  c.mutable_distributed()->mutable_totals()->set_requests_per_connection(1);
  std::string text = FormatCompare(c);
  ExpectHas(text, "the same on Windows");
  ExpectHas(text, "EADDRNOTAVAIL: 10048 WSAEADDRINUSE");
  ExpectHas(text, "FIN_WAIT2 / server CLOSE_WAIT");
  ExpectHas(text, "48 / 50");
  ExpectHas(text, "requests per connection");
  ExpectHas(text, "1.0 (spec 100)");
}

// The comparison fits 100 columns: long cells (many errors, their Windows codes) and the
// summary's sentences wrap instead of running past it.
TEST(ReportFormatTest, CompareFitsOneHundredColumns) {
  v1::CompareReport c;
  *c.mutable_single() = LeakingRun("r-1");
  *c.mutable_distributed() = LeakingRun("r-2");
  for (const char* e : {"ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "EADDRINUSE", "EMFILE"}) {
    (*c.mutable_single()->mutable_errors())[e] = 123456;
  }
  c.add_summary(std::string(40, 'x') + " " + std::string(300, 'y') +
                " and a sentence that goes on past the edge of any terminal the user has open");
  const std::string text = FormatCompare(c);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    EXPECT_LE(line.size(), 100u) << line;
  }
  ExpectHas(text, "ECONNREFUSED");
  ExpectHas(text, "any terminal");
}

TEST(ReportFormatTest, RunsShowTagsAndNoAchievedRateBeforeTheEnd) {
  v1::RunSummary running;
  running.set_run_id("r-2");
  running.set_state(v1::RunReport::STATE_RUNNING);
  running.set_requested_rate(200);
  v1::RunSummary done;
  done.set_run_id("r-1");
  done.set_state(v1::RunReport::STATE_COMPLETED);
  done.set_verdict(v1::RunReport::VERDICT_PASS);
  done.set_name("churn");
  done.set_achieved_rate(199.6);
  done.set_requested_rate(200);
  (*done.mutable_tags())["kernel"] = "6.1";
  (*done.mutable_tags())["build"] = "1234";
  const std::string text = FormatRuns({running, done});
  EXPECT_NE(text.find("running      -                   - "), std::string::npos) << text;
  EXPECT_NE(text.find("         200          200  churn [build=1234 kernel=6.1]\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace churnlab
