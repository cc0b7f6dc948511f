// Reports as users read them outside gRPC: JSON with counts as numbers, that still parses back
// as the RunReport message.
#include "proto/report_export.h"

#include "gtest/gtest.h"
#include "proto/message_json.h"

namespace churnlab {
namespace {

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

}  // namespace
}  // namespace churnlab
