#include "proto/message_json.h"

#include <cmath>
#include <memory>

#include "churnlab/v1/control.pb.h"
#include "churnlab/v1/report.pb.h"
#include "churnlab/v1/spec.pb.h"
#include "churnlab/v1/telemetry.pb.h"
#include "common/wire_protocol.h"
#include "gtest/gtest.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

TEST(MessageJsonTest, ChoicesAreWordsOutAndWordsOrNamesIn) {
  v1::RunSpec spec;
  spec.set_close_policy(v1::CLOSE_POLICY_SERVER_FIN);
  spec.set_bind_mode(v1::BIND_MODE_NO_PORT);
  spec.set_protocol(v1::PROTOCOL_HTTP);
  std::string json = MessageToJson(spec, /*one_line=*/true);
  EXPECT_NE(json.find(R"("close_policy":"server-fin")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("bind_mode":"no-port")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("protocol":"http")"), std::string::npos) << json;

  v1::RunSpec back;
  ASSERT_TRUE(ParseMessageJson(json, &back).ok());
  EXPECT_EQ(back.SerializeAsString(), spec.SerializeAsString());
  // protobuf's own names still read, so JSON written by protobuf's printer parses too.
  ASSERT_TRUE(ParseMessageJson(R"({"closePolicy": "CLOSE_POLICY_RST"})", &back).ok());
  EXPECT_EQ(back.close_policy(), v1::CLOSE_POLICY_RST);
}

// TCP states are written as `ss` names them, only those that hold a socket (as the map of names
// they were before wrote them), and a report stored then reads back into the typed counts.
TEST(MessageJsonTest, TcpStatesAreSsNamesWithoutZerosAndOldRowsRead) {
  v1::SourcePoint point;
  point.set_ip("127.0.0.2");
  point.mutable_tcp_states()->set_time_wait(5);
  point.mutable_tcp_states()->set_fin_wait2(2);
  std::string json = MessageToJson(point, /*one_line=*/true);
  EXPECT_NE(json.find(R"("tcp_states":{"FIN_WAIT2":2,"TIME_WAIT":5})"), std::string::npos) << json;
  // Every other field keeps its proto name and its zeros.
  EXPECT_NE(json.find(R"("ports_in_use":0)"), std::string::npos) << json;

  v1::SourcePoint back;
  ASSERT_TRUE(ParseMessageJson(json, &back).ok()) << json;
  EXPECT_EQ(back.SerializeAsString(), point.SerializeAsString());
  ASSERT_TRUE(
      ParseMessageJson(R"({"ip": "127.0.0.2", "tcp_states": {"CLOSE_WAIT": "7"}})", &back).ok());
  EXPECT_EQ(back.tcp_states().close_wait(), 7u);
  EXPECT_FALSE(ParseMessageJson(R"({"tcp_states": {"BOGUS": 1}})", &back).ok());
}

// The writer's layout is pinned: two spaces per level, empty arrays and objects as [] and {},
// one line without spaces.
TEST(MessageJsonTest, LayoutIsIndentedOrOneLine) {
  v1::RunSpec spec;
  spec.add_targets("127.0.0.1:9000");
  spec.set_rate(2.5);
  (*spec.mutable_tags())["b"] = "2";
  (*spec.mutable_tags())["a"] = "1";
  spec.mutable_duration()->set_seconds(1);
  spec.mutable_duration()->set_nanos(500'000'000);
  std::string pretty = MessageToJson(spec);
  EXPECT_NE(pretty.find("{\n  \"name\": \"\",\n  \"targets\": [\n    \"127.0.0.1:9000\"\n  ],"),
            std::string::npos)
      << pretty;
  EXPECT_NE(pretty.find("\"rate\": 2.5,"), std::string::npos) << pretty;
  EXPECT_NE(pretty.find("\"duration\": \"1.500s\""), std::string::npos) << pretty;
  EXPECT_NE(pretty.find("\"tags\": {\n    \"a\": \"1\",\n    \"b\": \"2\"\n  }"), std::string::npos)
      << pretty;
  EXPECT_NE(pretty.find("\"exclude_source_ips\": []"), std::string::npos) << pretty;
  EXPECT_EQ(pretty.back(), '\n');
  std::string line = MessageToJson(spec, /*one_line=*/true);
  EXPECT_NE(line.find(R"({"name":"","targets":["127.0.0.1:9000"],)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("tags":{"a":"1","b":"2"})"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

// Every kind of field reads back as it was written: strings with quotes, controls and other
// scripts, bytes, an optional, maps keyed by number (sorted by value), NaN, 64-bit extremes,
// nested and repeated messages, a Timestamp.
TEST(MessageJsonTest, EveryKindOfFieldReadsBack) {
  v1::RunSpec spec;
  spec.set_name("q\"uote \\ tab\t esc\x1b \xc3\xa9t\xc3\xa9 \xe2\x82\xac");
  spec.mutable_tls()->set_target_ca_pem(std::string("\0\xff-----BEGIN", 12));
  spec.set_requests_per_connection(0);  // present though 0
  spec.set_close_policy(v1::CLOSE_POLICY_RST);
  v1::ShardTelemetry t;
  (*t.mutable_status_codes())[503] = UINT64_MAX;
  (*t.mutable_status_codes())[200] = 1;
  (*t.mutable_status_codes())[99] = 2;
  v1::SourceCounts* s = t.add_sources();
  s->set_ip("127.0.0.2");
  s->mutable_tcp_states()->set_time_wait(7);
  t.add_sources()->set_ip("127.0.0.3");
  v1::RunReport report;
  *report.mutable_spec() = spec;
  report.set_achieved_rate(std::nan(""));
  report.set_requested_rate(1e300);
  report.mutable_start_time()->set_seconds(1'800'000'000);
  report.mutable_start_time()->set_nanos(123'000'000);

  for (const google::protobuf::Message* m :
       std::initializer_list<const google::protobuf::Message*>{&spec, &t, &report}) {
    absl::StatusOr<std::string> json = EncodeMessageJson(*m);
    ASSERT_TRUE(json.ok()) << json.status();
    std::unique_ptr<google::protobuf::Message> back(m->New());
    ASSERT_TRUE(ParseMessageJson(*json, back.get()).ok()) << *json;
    if (m == &report) {  // NaN != NaN: compare the rest
      EXPECT_TRUE(std::isnan(static_cast<v1::RunReport*>(back.get())->achieved_rate()));
      static_cast<v1::RunReport*>(back.get())->set_achieved_rate(0);
      v1::RunReport copy = report;
      copy.set_achieved_rate(0);
      EXPECT_EQ(back->SerializeAsString(), copy.SerializeAsString()) << *json;
    } else {
      EXPECT_EQ(back->DebugString(), m->DebugString()) << *json;
    }
  }
  std::string telemetry = MessageToJson(t, /*one_line=*/true);
  EXPECT_NE(telemetry.find(R"("status_codes":{"99":2,"200":1,"503":18446744073709551615})"),
            std::string::npos)
      << telemetry;
  std::string named = MessageToJson(spec, /*one_line=*/true);
  EXPECT_NE(named.find(R"("requests_per_connection":0)"), std::string::npos) << named;
  EXPECT_NE(named.find(R"(esc\u001b )"), std::string::npos) << named;
  EXPECT_NE(MessageToJson(report).find("\"achieved_rate\": \"NaN\""), std::string::npos);
  EXPECT_NE(MessageToJson(report).find("\"start_time\": \"2027-01-15T08:00:00.123Z\""),
            std::string::npos)
      << MessageToJson(report);
}

// What protobuf's JSON mapping cannot hold is refused, naming the message, never written; a
// string cut inside a character is still written, the broken bytes as U+FFFD.
TEST(MessageJsonTest, OutOfRangeTimesAreRefusedAndBrokenUtf8Replaced) {
  v1::RunSpec spec;
  spec.mutable_io_timeout()->set_seconds(400'000'000'000);
  absl::StatusOr<std::string> json = EncodeMessageJson(spec);
  ASSERT_FALSE(json.ok());
  EXPECT_NE(json.status().message().find("RunSpec cannot be written as JSON"), std::string::npos)
      << json.status();
  spec.clear_io_timeout();
  spec.set_name("caf\xc3");
  json = EncodeMessageJson(spec, /*one_line=*/true);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_NE(json->find(R"("name":"caf\ufffd")"), std::string::npos) << *json;
  v1::RunSpec back;
  EXPECT_TRUE(ParseMessageJson(*json, &back).ok());
  EXPECT_EQ(back.name(), "caf\xef\xbf\xbd");
}

// A run's state, verdict and limiter, an agent's state and a failure's phase read as the
// strings they were before they became enums: a running run's verdict is "", and reports
// stored then still parse.
TEST(MessageJsonTest, ReportStatesAreTheirWordsAndUnsetIsEmpty) {
  v1::RunReport running;
  running.set_state(v1::RunReport::STATE_RUNNING);
  std::string json = MessageToJson(running, /*one_line=*/true);
  EXPECT_NE(json.find(R"("state":"running")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("verdict":"")"), std::string::npos) << json;
  v1::RunReport back;
  ASSERT_TRUE(ParseMessageJson(json, &back).ok());
  EXPECT_EQ(back.verdict(), v1::RunReport::VERDICT_UNSPECIFIED);

  ASSERT_TRUE(ParseMessageJson(R"({"state": "interrupted", "verdict": "pass",
      "concurrency": {"limiter": "ports"},
      "failures": [{"phase": "connect-timeout", "code": "ETIMEDOUT", "count": 2}]})",
                               &back)
                  .ok());
  EXPECT_EQ(back.state(), v1::RunReport::STATE_INTERRUPTED);
  EXPECT_EQ(back.verdict(), v1::RunReport::VERDICT_PASS);
  EXPECT_EQ(back.concurrency().limiter(), v1::ConcurrencyReport::LIMITER_PORTS);
  EXPECT_EQ(back.failures(0).phase(), v1::FAILURE_PHASE_CONNECT_TIMEOUT);
  EXPECT_EQ(Word(back.failures(0).phase()), "connect-timeout");
  EXPECT_FALSE(ParseMessageJson(R"({"state": "finished"})", &back).ok());

  v1::AgentInfo lost;
  lost.set_state(v1::AgentInfo::STATE_LOST);
  EXPECT_NE(MessageToJson(lost, true).find(R"("state":"lost")"), std::string::npos);
}

TEST(MessageJsonTest, AnUnknownWordNamesTheFieldAndTheWords) {
  v1::RunSpec spec;
  absl::Status status = ParseMessageJson(R"({"bind_mode": "sometimes"})", &spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            R"(bind_mode: "sometimes" is not one of none, no-port, bind, bind-any, engine)");
  // The unset zero reads back by its name (reports print it so), and is no word of its own.
  EXPECT_TRUE(ParseMessageJson(R"({"protocol": "PROTOCOL_UNSPECIFIED"})", &spec).ok());
  EXPECT_EQ(spec.protocol(), v1::PROTOCOL_UNSPECIFIED);
  EXPECT_EQ(EnumWords(*v1::Protocol_descriptor()), "counter, http, tls, https");
}

// The engine names its choices itself (it links no protobuf); both spellings must agree.
TEST(MessageJsonTest, WordsAreTheEngineNames) {
  for (v1::ClosePolicy p :
       {v1::CLOSE_POLICY_CLIENT_FIN, v1::CLOSE_POLICY_RST, v1::CLOSE_POLICY_SERVER_FIN}) {
    EXPECT_EQ(EnumWord(*v1::ClosePolicy_descriptor()->FindValueByNumber(p)),
              ClosePolicyName(*ToEngine(p)));
  }
  for (v1::BindMode m :
       {v1::BIND_MODE_NONE, v1::BIND_MODE_NO_PORT, v1::BIND_MODE_BIND, v1::BIND_MODE_BIND_ANY}) {
    EXPECT_EQ(EnumWord(*v1::BindMode_descriptor()->FindValueByNumber(m)),
              BindModeName(*ToEngine(m)));
  }
  for (v1::Protocol p : {v1::PROTOCOL_COUNTER, v1::PROTOCOL_HTTP}) {
    EXPECT_EQ(EnumWord(*v1::Protocol_descriptor()->FindValueByNumber(p)),
              ProtocolName(*ToEngine(p)));
  }
  EXPECT_FALSE(ToEngine(static_cast<v1::ClosePolicy>(7)).ok());
  EXPECT_FALSE(ToEngine(v1::BIND_MODE_UNSPECIFIED).ok());
}

}  // namespace
}  // namespace churnlab
