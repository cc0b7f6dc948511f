#include "proto/message_json.h"

#include "churnlab/v1/control.pb.h"
#include "churnlab/v1/report.pb.h"
#include "churnlab/v1/spec.pb.h"
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
            R"(bind_mode: "sometimes" is not one of none, no-port, bind, bind-any)");
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
