// Reports as users read them outside gRPC: JSON with counts as numbers, that still parses back
// as the RunReport message.
#include "proto/report_export.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "proto/message_json.h"

namespace churnlab {
namespace {

// The phase a word names ("connect-timeout").
v1::FailurePhase PhaseNamed(const std::string& word) {
  return static_cast<v1::FailurePhase>(*EnumFromWord(*v1::FailurePhase_descriptor(), word));
}

v1::RunReport Report() {
  v1::RunReport report;
  report.set_run_id("r-1");
  report.mutable_spec()->set_name("123");  // a string that looks like a number stays a string
  report.mutable_spec()->set_rate(200);
  report.mutable_spec()->mutable_duration()->set_seconds(8);
  report.mutable_totals()->set_attempted(400);
  report.mutable_totals()->set_failed(0);
  (*report.mutable_errors())["EADDRNOTAVAIL"] = 600;
  v1::SourceReport* source = report.add_agents()->add_sources();
  source->set_ip("127.0.0.2");
  source->set_peak_ports_in_use(998);
  (*report.mutable_kernel_counters())["ListenDrops"] = -3;
  report.add_series()->set_attempted(201);
  return report;
}

TEST(ReportToJsonTest, CountsAreJsonNumbers) {
  std::string json = ReportToJson(Report());
  EXPECT_NE(json.find(R"("attempted": 400)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("failed": 0)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("EADDRNOTAVAIL": 600)"), std::string::npos) << json;      // map values
  EXPECT_NE(json.find(R"("peak_ports_in_use": 998)"), std::string::npos) << json;  // nested
  EXPECT_NE(json.find(R"("ListenDrops": -3)"), std::string::npos) << json;         // signed
  EXPECT_NE(json.find(R"("attempted": 201)"), std::string::npos) << json;          // repeated
  EXPECT_NE(json.find(R"("concurrency": 0)"), std::string::npos) << json;          // the spec's
  EXPECT_NE(json.find(R"("name": "123")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("duration": "8s")"), std::string::npos) << json;  // well-known types
  EXPECT_EQ(json.find(R"(": "0")"), std::string::npos) << json;
}

TEST(ReportToJsonTest, ParsesBackAsTheSameReport) {
  v1::RunReport report = Report();
  for (bool one_line : {false, true}) {
    v1::RunReport back;
    ASSERT_TRUE(ParseMessageJson(MessageToJson(report, one_line), &back).ok());
    EXPECT_EQ(back.SerializeAsString(), report.SerializeAsString());
  }
  EXPECT_EQ(MessageToJson(report, /*one_line=*/true).find('\n'), std::string::npos);
}

v1::FailureCount* AddFailure(v1::SeriesPoint* point, const std::string& phase,
                             const std::string& code, uint64_t count) {
  v1::FailureCount* f = point->add_failures();
  f->set_phase(PhaseNamed(phase));
  f->set_code(code);
  f->set_count(count);
  (*point->mutable_errors())[code] += count;
  return f;
}

std::vector<std::vector<std::string>> Rows(const std::string& csv) {
  std::vector<std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(csv, '\n', absl::SkipEmpty())) {
    rows.push_back(absl::StrSplit(line, ','));
  }
  return rows;
}

// One column per phase and errno the run saw, in one sorted order for every row (0 where a
// point had none), after the columns the CSV always had; absolute times beside t_s.
TEST(SeriesToCsvTest, OneColumnPerPhaseAndErrnoAndAbsoluteTimes) {
  v1::RunReport report;
  report.set_started_at("2027-01-15T08:00:00+00:00");
  *report.mutable_start_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(1'800'000'000'250'000'000);
  v1::SeriesPoint* p1 = report.add_series();
  p1->set_t_s(1.0);
  p1->set_attempted(10);
  AddFailure(p1, "connect", "ECONNREFUSED", 3);
  v1::SeriesPoint* p2 = report.add_series();
  p2->set_t_s(2.5);
  AddFailure(p2, "read", "ECONNRESET", 2);
  AddFailure(p2, "connect-timeout", "ETIMEDOUT", 1);
  AddFailure(p2, "connect", "EADDRNOTAVAIL", 7);

  std::vector<std::vector<std::string>> rows = Rows(SeriesToCsv(report));
  ASSERT_EQ(rows.size(), 3u);
  const std::vector<std::string> header = {"t_s",
                                           "interval_s",
                                           "attempted",
                                           "succeeded",
                                           "failed",
                                           "in_flight",
                                           "connect_call_p99_ms",
                                           "loop_lag_max_ms",
                                           "errors",
                                           "time",
                                           "unix_s",
                                           "connect_p50_ms",
                                           "connect_p90_ms",
                                           "connect_p99_ms",
                                           "connect_p999_ms",
                                           "total_p50_ms",
                                           "total_p90_ms",
                                           "total_p99_ms",
                                           "total_p999_ms",
                                           "tls_handshake_p50_ms",
                                           "tls_handshake_p90_ms",
                                           "tls_handshake_p99_ms",
                                           "tls_handshake_p999_ms",
                                           "tls_full",
                                           "tls_resumed",
                                           "connect_EADDRNOTAVAIL",
                                           "connect_ECONNREFUSED",
                                           "connect_timeout_ETIMEDOUT",
                                           "read_ECONNRESET"};
  EXPECT_EQ(rows[0], header);  // each column once (connect_p99_ms was twice)
  for (const auto& row : rows) EXPECT_EQ(row.size(), header.size());
  // 1,800,000,000.25 s after the epoch is 2027-01-15T08:00:00.250Z; t_s is added to it.
  EXPECT_EQ(rows[1][9], "2027-01-15T08:00:01.250Z");
  EXPECT_EQ(rows[1][10], "1800000001.250");
  EXPECT_EQ(rows[2][9], "2027-01-15T08:00:02.750Z");
  EXPECT_EQ(rows[2][10], "1800000002.750");
  EXPECT_EQ(rows[1][2], "10");
  EXPECT_EQ(rows[1][8], "ECONNREFUSED=3");
  EXPECT_EQ(std::vector<std::string>(rows[1].begin() + 25, rows[1].end()),
            (std::vector<std::string>{"0", "3", "0", "0"}));
  EXPECT_EQ(std::vector<std::string>(rows[2].begin() + 25, rows[2].end()),
            (std::vector<std::string>{"7", "0", "1", "2"}));
  // No connection made in these intervals: their latencies are empty cells, not 0.000.
  EXPECT_EQ(rows[1][6], "");
  EXPECT_EQ(rows[1][13], "");
}

// Each interval's latencies to p99.9 (connect, the whole connection, the TLS handshake) and its
// TLS handshakes, full and resumed, in their columns.
TEST(SeriesToCsvTest, EveryLatencyToP999AndTlsHandshakesPerInterval) {
  v1::RunReport report;
  v1::SeriesPoint* p = report.add_series();
  p->set_t_s(1.0);
  p->set_connect_p999_ms(3.5);
  p->set_total_p50_ms(1.25);
  p->set_total_p999_ms(9);
  p->set_tls_handshake_p99_ms(4.5);
  p->set_tls_full(7);
  p->set_tls_resumed(93);
  std::vector<std::vector<std::string>> rows = Rows(SeriesToCsv(report));
  ASSERT_EQ(rows.size(), 2u);
  auto cell = [&](const std::string& column) {
    auto it = std::find(rows[0].begin(), rows[0].end(), column);
    return it == rows[0].end() ? std::string("(no column)") : rows[1][it - rows[0].begin()];
  };
  EXPECT_EQ(cell("connect_p999_ms"), "3.500");
  EXPECT_EQ(cell("total_p50_ms"), "1.250");
  EXPECT_EQ(cell("total_p999_ms"), "9.000");
  EXPECT_EQ(cell("tls_handshake_p99_ms"), "4.500");
  EXPECT_EQ(cell("tls_full"), "7");
  EXPECT_EQ(cell("tls_resumed"), "93");
}

// Reports stored before start_time existed give their absolute times from started_at (to the
// second); points stored before they carried phases give no per-phase columns.
TEST(SeriesToCsvTest, OlderReportsStillGiveAbsoluteTimes) {
  v1::RunReport report;
  report.set_started_at("2027-01-15T08:00:00+00:00");
  v1::SeriesPoint* p = report.add_series();
  p->set_t_s(1.0);
  (*p->mutable_errors())["ECONNREFUSED"] = 4;
  std::vector<std::vector<std::string>> rows = Rows(SeriesToCsv(report));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].back(), "tls_resumed");  // no per-phase columns after the fixed ones
  EXPECT_EQ(rows[1][9], "2027-01-15T08:00:01.000Z");
  EXPECT_EQ(rows[1][10], "1800000001.000");
}

// A failure kind from an agent is data, not CSV: quotes and commas cannot add columns.
TEST(SeriesToCsvTest, NamesFromAgentsCannotBreakTheColumns) {
  v1::RunReport report;
  v1::SeriesPoint* p = report.add_series();
  AddFailure(p, "read", "EVIL,\"x\"\n", 1);
  std::string csv = SeriesToCsv(report);
  std::string header = csv.substr(0, csv.find('\n'));
  EXPECT_EQ(header.substr(header.rfind(",tls_resumed")), ",tls_resumed,read_EVIL__x__") << csv;
  // RFC 4180: the errors field is quoted, its quotes doubled, its line break kept inside.
  EXPECT_NE(csv.find(",\"EVIL,\"\"x\"\"\n=1\","), std::string::npos) << csv;
}

// A cell a spreadsheet would run as a formula (=HYPERLINK(...), +cmd, -2+3, @SUM) gets a
// leading ' (CSV injection).
TEST(SeriesToCsvTest, ACellCannotBeAFormula) {
  v1::RunReport report;
  AddFailure(report.add_series(), "read", "=HYPERLINK(\"http://x\")", 1);
  std::string csv = SeriesToCsv(report);
  std::string row = csv.substr(csv.find('\n') + 1);
  EXPECT_NE(row.find("\"'=HYPERLINK("), std::string::npos) << csv;
  EXPECT_EQ(row.find(",=HYPERLINK"), std::string::npos) << csv;
}

// Several runs: a row each, every latency summary in its columns, names that cannot be formulas;
// JSON a list of the reports.
TEST(RunsExportTest, ARowPerRunAndAListOfReports) {
  std::vector<v1::RunReport> runs(2);
  runs[0].set_run_id("r-1");
  runs[0].mutable_spec()->set_name("=cmd()");
  runs[0].set_state(v1::RunReport::STATE_COMPLETED);
  runs[0].set_verdict(v1::RunReport::VERDICT_FAIL);
  runs[0].mutable_totals()->set_attempted(200);
  runs[0].mutable_totals()->set_failed(50);
  (*runs[0].mutable_errors())["ECONNREFUSED"] = 20;
  (*runs[0].mutable_errors())["EADDRNOTAVAIL"] = 30;
  runs[0].mutable_latency()->mutable_connect()->set_p90_ms(1.5);
  runs[0].mutable_latency()->mutable_tls_handshake()->set_max_ms(9.25);
  runs[1].set_run_id("r-2");
  const std::string csv = RunsToCsv(runs);
  std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << csv;
  std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  std::vector<std::string> first = absl::StrSplit(lines[1], ',');
  ASSERT_EQ(header.size(), first.size()) << csv;
  auto cell = [&](const std::string& column) {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == column) return first[i];
    }
    ADD_FAILURE() << "no column " << column;
    return std::string();
  };
  EXPECT_EQ(cell("name"), "'=cmd()");
  EXPECT_EQ(cell("verdict"), "fail");
  EXPECT_EQ(cell("error_rate"), "0.250000");
  EXPECT_EQ(cell("connect_p90_ms"), "1.500");
  EXPECT_EQ(cell("tls_handshake_max_ms"), "9.250");
  EXPECT_EQ(cell("top_error"), "EADDRNOTAVAIL=30");
  EXPECT_EQ(lines[2].rfind("r-2,,", 0), 0u);

  const std::string json = RunsToJson(runs);
  EXPECT_EQ(json.rfind("{\"runs\": [", 0), 0u);
  EXPECT_NE(json.find("\"run_id\": \"r-2\""), std::string::npos);
}

}  // namespace
}  // namespace churnlab
