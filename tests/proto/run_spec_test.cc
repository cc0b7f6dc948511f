#include "proto/run_spec.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/fuzz/spec_invariants.h"
#include "tests/support/source_path.h"

namespace churnlab {
namespace {

constexpr char kGood[] = R"({
  "name": "tw",
  "targets": ["127.0.0.1:9000", "[::1]:9001"],
  "rate": 1500,
  "duration": "30s",
  "rampUp": "5s",
  "close_policy": "client-fin",
  "maxInFlight": 600,
  "bind_mode": "bind",
  "thresholds": ["error_rate < 0.01", "connect_p99 <= 50ms"]
})";

TEST(RunSpecTest, ParsesBothFieldSpellingsAndShortChoices) {
  absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(kGood);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->max_in_flight(), 600);
  EXPECT_EQ(spec->ramp_up().seconds(), 5);
  EXPECT_EQ(spec->close_policy(), v1::CLOSE_POLICY_CLIENT_FIN);
  ApplyRunSpecDefaults(&*spec);
  EXPECT_EQ(spec->protocol(), v1::PROTOCOL_COUNTER);
  EXPECT_EQ(spec->requests_per_connection(), 1);
  EXPECT_EQ(spec->io_timeout().seconds(), 2);
  // Mixed families are refused by the engine's own check.
  EXPECT_NE(ValidateRunSpec(*spec).message().find("targets"), absl::string_view::npos);
  spec->mutable_targets()->RemoveLast();
  EXPECT_TRUE(ValidateRunSpec(*spec).ok()) << ValidateRunSpec(*spec);
}

TEST(RunSpecTest, UnknownFieldsAndWrongTypesAreNamed) {
  absl::StatusOr<v1::RunSpec> unknown = ParseRunSpecJson(R"({"targets": [], "ratee": 5})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("ratee"), absl::string_view::npos);
  absl::StatusOr<v1::RunSpec> wrong = ParseRunSpecJson(R"({"rate": "fast"})");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("rate"), absl::string_view::npos);
  EXPECT_FALSE(ParseRunSpecJson("{not json").ok());
}

struct BadField {
  std::string json_fragment;  // merged into a good spec
  std::string field;          // must appear in the error
};

void PrintTo(const BadField& b, std::ostream* os) { *os << b.json_fragment; }

class RunSpecBadFieldTest : public ::testing::TestWithParam<BadField> {};

TEST_P(RunSpecBadFieldTest, ValidationNamesTheField) {
  // The fragment's own targets or duration replace the good ones (a key given twice is refused).
  const std::string& fragment = GetParam().json_fragment;
  std::string json = "{";
  if (!absl::StrContains(fragment, "\"targets\"")) json += R"("targets": ["127.0.0.1:9000"], )";
  if (!absl::StrContains(fragment, "\"duration\"")) json += R"("duration": "10s", )";
  json += fragment + "}";
  // A choice that is no word of its enum is refused by the parser ("spec: protocol: ..."),
  // the rest by validation ("rate: ...").
  absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(json);
  absl::Status status = spec.status();
  if (spec.ok()) {
    ApplyRunSpecDefaults(&*spec);
    status = ValidateRunSpec(*spec);
  }
  ASSERT_FALSE(status.ok()) << json;
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  absl::string_view message = status.message();
  absl::ConsumePrefix(&message, "spec: ");
  EXPECT_TRUE(absl::StartsWith(message, GetParam().field)) << status;
}

INSTANTIATE_TEST_SUITE_P(
    EveryField, RunSpecBadFieldTest,
    ::testing::Values(
        BadField{R"("rate": 0)", "rate"}, BadField{R"("rate": -5)", "rate"},
        BadField{R"("rate": 1e12)", "rate"}, BadField{R"("rate": 5, "concurrency": 5)", "rate"},
        BadField{R"("concurrency": -1)", "concurrency"},
        BadField{R"("concurrency": 99999999)", "concurrency"},
        BadField{R"("rate": 5, "duration": "0s")", "duration"},
        BadField{R"("rate": 5, "duration": "100000s")", "duration"},
        BadField{R"("rate": 5, "ramp_up": "20s")", "ramp_up"},
        BadField{R"("concurrency": 5, "ramp_up": "2s")", "ramp_up"},
        BadField{R"("rate": 5, "protocol": "ftp")", "protocol"},
        BadField{R"("rate": 5, "close_policy": "later")", "close_policy"},
        BadField{R"("rate": 5, "bind_mode": "sometimes")", "bind_mode"},
        BadField{R"("rate": 5, "requests_per_connection": -2)", "requests_per_connection"},
        BadField{R"("rate": 5, "connect_timeout": "-1s")", "connect_timeout"},
        BadField{R"("rate": 5, "io_timeout": "-1s")", "io_timeout"},
        // No JSON holds 4e11 s; an hour is the documented most, and the drain they make 24 h.
        BadField{R"("rate": 5, "io_timeout": "3601s")", "io_timeout"},
        BadField{R"("rate": 5, "connect_timeout": "3601s")", "connect_timeout"},
        BadField{R"("rate": 5, "io_timeout": "3600s", "requests_per_connection": 100)",
                 "io_timeout"},
        BadField{R"("rate": 5, "bind_mode": "bind-any", "source_ips_per_agent": 1)", "bind_mode"},
        BadField{R"("rate": 5, "hold": "-1s")", "hold"},
        BadField{R"("rate": 5, "hold": "100000s")", "hold"},
        BadField{R"("concurrency": 5, "hold": "5s", "close_policy": "server-fin")", "hold"},
        BadField{R"("rate": 5, "max_in_flight": -3)", "max_in_flight"},
        BadField{R"("rate": 5, "agents": -1)", "agents"},
        BadField{R"("rate": 5, "source_ips_per_agent": -1)", "source_ips_per_agent"},
        BadField{R"("rate": 5, "source_ips": ["127.0.0.300"])", "source_ips"},
        BadField{R"("rate": 5, "exclude_source_ips": ["127.0.0.300"])", "exclude_source_ips"},
        BadField{R"("rate": 5, "agent_names": [""])", "agent_names"},
        BadField{R"("rate": 5, "bind_mode": "none", "source_ips": ["127.0.0.2"])", "bind_mode"},
        BadField{R"("rate": 5, "thresholds": ["latency < 5"])", "thresholds"},
        BadField{R"("rate": 5, "thresholds": ["error_rate ~ 5"])", "thresholds"},
        BadField{R"("rate": 5, "targets": ["127.0.0.1"])", "targets"},
        BadField{R"("rate": 5, "targets": ["127.0.0.1:0"])", "targets"},
        BadField{R"("rate": 5, "targets": ["-bad-.example:443"])", "targets"},
        BadField{R"("rate": 5, "targets": ["api.example:0"])", "targets"},
        BadField{R"("rate": 5, "targets": ["api.example"])", "targets"},
        // TLS: a CA or insecure, not both, not for plain protocols; a share in [0, 1].
        BadField{R"("rate": 5, "protocol": "https")", "target_ca"},
        BadField{
            R"("rate": 5, "protocol": "tls", "tls": {"insecure": true, "target_ca_pem": "eA=="})",
            "insecure"},
        BadField{R"("rate": 5, "tls": {"insecure": true})", "tls"},
        BadField{R"("rate": 5, "protocol": "https", "tls": {"insecure": true, "resumption": 1.5})",
                 "tls_resumption"},
        // Requests: HTTP only; a method, path and headers that cannot break the request.
        BadField{R"("rate": 5, "request": {"path": "/x"})", "request"},
        BadField{R"("rate": 5, "protocol": "http", "request": {"method": "GE T"})", "method"},
        BadField{R"("rate": 5, "protocol": "http", "request": {"path": "no-slash"})", "path"},
        BadField{R"("rate": 5, "protocol": "http", "request": {"headers": ["Connection: close"]})",
                 "headers"},
        BadField{R"("rate": 5, "protocol": "http", "request": {"expect_status": 99})",
                 "expect_status"},
        // Connect-only has no last request to ask the server to close in.
        BadField{R"("rate": 5, "requests_per_connection": 0, "close_policy": "server-fin")",
                 "close_policy"}));

TEST(RunSpecTest, HttpsByNameWithTheUsersRequestReachesTheEngine) {
  absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(R"({
    "targets": ["api.example:443", "127.0.0.1:8443"], "rate": 10, "duration": "5s",
    "protocol": "https", "requests_per_connection": 0,
    "request": {"method": "POST", "path": "/v1?x=1", "headers": ["X-A: b"], "body": "eyJ9",
                "expect_status": 201},
    "tls": {"target_ca_pem": "LS0t", "resumption": 0.5}})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ApplyRunSpecDefaults(&*spec);
  ASSERT_TRUE(ValidateRunSpec(*spec).ok()) << ValidateRunSpec(*spec);
  EXPECT_TRUE(spec->has_requests_per_connection());
  EXPECT_EQ(spec->requests_per_connection(), 0);  // kept: 0 means connect-only, not "unset"
  absl::StatusOr<EngineParams> p = EngineParamsFromSpec(*spec);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->protocol, Protocol::kHttps);
  ASSERT_EQ(p->targets.size(), 1u);
  ASSERT_EQ(p->named_targets.size(), 1u);
  EXPECT_EQ(p->named_targets[0].host, "api.example");
  EXPECT_EQ(p->named_targets[0].port, 443);
  EXPECT_EQ(p->request.method, "POST");
  EXPECT_EQ(p->request.path, "/v1?x=1");
  EXPECT_EQ(p->request.body, "{\"}");
  EXPECT_EQ(p->expect_status, 201);
  EXPECT_EQ(p->tls.ca_pem, "---");
  EXPECT_EQ(p->tls.resumption, 0.5);
  // A spec without requests_per_connection still gets one request; http gets GET /.
  absl::StatusOr<v1::RunSpec> plain = ParseRunSpecJson(
      R"({"targets": ["127.0.0.1:80"], "rate": 1, "duration": "1s", "protocol": "http"})");
  ASSERT_TRUE(plain.ok());
  ApplyRunSpecDefaults(&*plain);
  EXPECT_EQ(plain->requests_per_connection(), 1);
  EXPECT_EQ(plain->request().method(), "GET");
  EXPECT_EQ(plain->request().path(), "/");
}

// The parser's own status: INVALID_ARGUMENT, starting with `field`, mentioning `words`.
void ExpectParseRefused(const std::string& json, const std::string& field,
                        const std::string& words) {
  absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(json);
  ASSERT_FALSE(spec.ok()) << json.substr(0, 200);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(spec.status().message(), field + ":")) << spec.status();
  EXPECT_NE(spec.status().message().find(words), std::string::npos) << spec.status();
}

TEST(RunSpecTest, DuplicateKeysAreRefusedNamingTheField) {
  ExpectParseRefused(R"({"rate":1,"rate":1e6})", "rate", "given twice");
  // Both spellings of one field are the same ambiguity.
  ExpectParseRefused(R"({"max_in_flight":1,"maxInFlight":2})", "max_in_flight",
                     "\"max_in_flight\" and \"maxInFlight\"");
  // An escaped key is the same key.
  ExpectParseRefused(R"({"rate":1,"r\u0061te":2})", "rate", "given twice");
  ExpectParseRefused(R"({"targets":["127.0.0.1:1"],"duration":"1s","targets":[]})", "targets",
                     "given twice");
  // Unknown keys are left to protobuf, which names them.
  absl::StatusOr<v1::RunSpec> unknown = ParseRunSpecJson(R"({"ratee":1,"ratee":2})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("ratee"), std::string::npos) << unknown.status();
}

TEST(RunSpecTest, NestedValuesWhereSingleOnesBelongAreRefused) {
  ExpectParseRefused(R"({"targets":[["127.0.0.1:9000"]]})", "targets", "an array inside the list");
  ExpectParseRefused(R"({"targets":[{"ip":"127.0.0.1"}]})", "targets", "an object inside the list");
  ExpectParseRefused(R"({"targets":"127.0.0.1:9000"})", "targets", "where a list belongs");
  ExpectParseRefused(R"({"rate":[1]})", "rate", "an array where a single value belongs");
  ExpectParseRefused(R"({"name":{"a":1})", "name", "an object where a single value belongs");
  ExpectParseRefused(R"({"duration":{"seconds":1})", "duration", "an object");
  ExpectParseRefused(R"([{"rate":1}])", "spec", "where a JSON object belongs");
  // 200,000 levels: refused at the ninth, without recursion.
  std::string deep = R"({"targets":)" + std::string(200'000, '[') + std::string(200'000, ']') + "}";
  ExpectParseRefused(deep, "targets", "an array inside the list");
  std::string deep_unknown =
      R"({"x":)" + std::string(200'000, '[') + std::string(200'000, ']') + "}";
  ExpectParseRefused(deep_unknown, "spec", "deeper than 8");
  // Null stays the field's default, as protobuf reads it.
  absl::StatusOr<v1::RunSpec> nulls = ParseRunSpecJson(R"({"rate":null,"targets":null})");
  ASSERT_TRUE(nulls.ok()) << nulls.status();
  ExpectParseRefused(R"({"rate":1,)", "spec", "not JSON at byte");
}

TEST(RunSpecTest, SizesAreBoundedAndTheLimitNamed) {
  std::string big = R"({"name":")" + std::string(10 << 20, 'x') + R"("})";
  ExpectParseRefused(big, "spec", "at most 1048576 (1 MiB)");
  v1::RunSpec spec =
      *ParseRunSpecJson(R"({"targets":["127.0.0.1:9000"],"duration":"1s","rate":5})");
  ApplyRunSpecDefaults(&spec);
  ASSERT_TRUE(ValidateRunSpec(spec).ok());
  auto refused = [](const v1::RunSpec& s, const std::string& field, const std::string& limit) {
    absl::Status status = ValidateRunSpec(s);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(status.message(), field + ":")) << status;
    EXPECT_NE(status.message().find(limit), std::string::npos) << status;
  };
  v1::RunSpec s = spec;
  s.set_name(std::string(257, 'n'));
  refused(s, "name", "at most 256");
  s = spec;
  s.set_name(std::string(2 << 20, 'n'));
  refused(s, "spec", "at most 1048576");
  s = spec;
  for (int i = 0; i < 10'001; ++i) s.add_exclude_source_ips("127.0.0.9");
  refused(s, "exclude_source_ips", "at most 10000");
  s = spec;
  s.add_exclude_source_ips(std::string(65, '1'));
  refused(s, "exclude_source_ips", "at most 64");
  s = spec;
  for (int i = 0; i < 10'001; ++i) s.add_source_ips("127.0.0.9");
  refused(s, "source_ips", "at most 10000");
  s = spec;
  for (int i = 0; i < 10'001; ++i) s.add_agent_names("a");
  refused(s, "agent_names", "at most 10000");
  s = spec;
  s.add_agent_names(std::string(129, 'a'));
  refused(s, "agent_names", "at most 128");
  s = spec;
  for (int i = 0; i < 65; ++i) s.add_thresholds("error_rate < 0.1");
  refused(s, "thresholds", "at most 64");
  s = spec;
  for (int i = 0; i < 1001; ++i) s.add_targets("127.0.0.1:9000");
  refused(s, "targets", "at most 1000");
}

TEST(RunSpecTest, RateWithConcurrencyIsRefusedNamingBoth) {
  v1::RunSpec spec = *ParseRunSpecJson(
      R"({"targets": ["127.0.0.1:9000"], "duration": "1s", "rate": 5, "concurrency": 5})");
  ApplyRunSpecDefaults(&spec);
  absl::Status status = ValidateRunSpec(spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "rate, concurrency:")) << status;
  EXPECT_NE(status.message().find("not both"), std::string::npos) << status;
}

TEST(RunSpecTest, HoldReachesTheEngineAndTheDrainBound) {
  absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(
      R"({"targets": ["127.0.0.1:9000"], "concurrency": 100, "duration": "10s", "hold": "90s",
          "close_policy": "rst"})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ApplyRunSpecDefaults(&*spec);
  ASSERT_TRUE(ValidateRunSpec(*spec).ok()) << ValidateRunSpec(*spec);
  absl::StatusOr<EngineParams> params = EngineParamsFromSpec(*spec);
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->hold, absl::Seconds(90));
  // connect 1s + io 2s x (1 request + the FIN) + the hold.
  EXPECT_EQ(DrainBound(*params), absl::Seconds(1 + 2 * 2 + 90));
  // Without a hold nothing changes.
  spec->clear_hold();
  EXPECT_EQ(DrainBound(*EngineParamsFromSpec(*spec)), absl::Seconds(5));
}

TEST(RunSpecTest, TargetsAreRequired) {
  v1::RunSpec spec = *ParseRunSpecJson(R"({"rate": 5, "duration": "1s"})");
  ApplyRunSpecDefaults(&spec);
  EXPECT_TRUE(absl::StartsWith(ValidateRunSpec(spec).message(), "targets"));
}

TEST(RunSpecTest, RebalanceNeedsTheOpenModel) {
  v1::RunSpec spec = *ParseRunSpecJson(
      R"({"targets": ["127.0.0.1:1"], "rate": 5, "duration": "1s", "rebalance": true})");
  ApplyRunSpecDefaults(&spec);
  EXPECT_TRUE(ValidateRunSpec(spec).ok());
  spec.set_rate(0);
  spec.set_concurrency(10);
  absl::Status s = ValidateRunSpec(spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("rebalance"), std::string::npos) << s.message();
}

TEST(RunSpecTest, DurationIsRequired) {
  v1::RunSpec spec;
  spec.add_targets("127.0.0.1:1");
  spec.set_rate(5);
  ApplyRunSpecDefaults(&spec);
  EXPECT_TRUE(absl::StartsWith(ValidateRunSpec(spec).message(), "duration"));
}

}  // namespace
}  // namespace churnlab

namespace churnlab {
namespace {

TEST(ScenariosTest, EveryShippedScenarioIsAValidSpec) {
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(testing::SourcePath("/scenarios"))) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(text.str());
    ASSERT_TRUE(spec.ok()) << entry.path() << ": " << spec.status();
    ApplyRunSpecDefaults(&*spec);
    EXPECT_TRUE(ValidateRunSpec(*spec).ok()) << entry.path() << ": " << ValidateRunSpec(*spec);
    ++seen;
  }
  EXPECT_GE(seen, 1);
}

}  // namespace
}  // namespace churnlab

// The fuzz target's findings (tests/fuzz/regressions) and the scenarios, through the same
// invariants the fuzzer checks: a crash found once stays fixed.
TEST(RunSpecFuzzRegressions, EveryStoredInputKeepsTheInvariants) {
  int inputs = 0;
  for (const char* dir : {"/tests/fuzz/regressions", "/scenarios"}) {
    for (const auto& entry :
         std::filesystem::directory_iterator(churnlab::testing::SourcePath(dir))) {
      if (!entry.is_regular_file() || entry.path().extension() == ".md") continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      SCOPED_TRACE(entry.path().string());
      churnlab::testing::CheckSpecInvariants(text.str());
      ++inputs;
    }
  }
  EXPECT_GE(inputs, 10);
}

namespace churnlab {
namespace {

TEST(RunSpecStagesTest, StagesSetThePeakRateAndTheDuration) {
  absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(R"({"targets": ["127.0.0.1:9000"],
      "stages": [{"duration": "10s", "rate": 100}, {"duration": "30s", "rate": 300},
                 {"duration": "10s", "rate": 0}]})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ApplyRunSpecDefaults(&*spec);
  EXPECT_EQ(spec->rate(), 300);
  EXPECT_EQ(spec->duration().seconds(), 50);
  ASSERT_TRUE(ValidateRunSpec(*spec).ok()) << ValidateRunSpec(*spec);
  EXPECT_DOUBLE_EQ(RequestedRateAt(*spec, 5), 50);
  EXPECT_DOUBLE_EQ(RequestedRateAt(*spec, 20), 100 + 200.0 / 3);
  EXPECT_DOUBLE_EQ(RequestedRateAt(*spec, 45), 150);
  EXPECT_DOUBLE_EQ(RequestedRateAt(*spec, 51), 0);

  // An agent with a third of the peak runs a third of every stage.
  v1::Shard shard;
  *shard.mutable_spec() = *spec;
  shard.set_rate(100);
  shard.add_source_ips("127.0.0.1");
  absl::StatusOr<EngineParams> params = EngineParamsFromShard(shard);
  ASSERT_TRUE(params.ok()) << params.status();
  ASSERT_EQ(params->stages.size(), 3u);
  EXPECT_DOUBLE_EQ(params->stages[0].rate, 100.0 / 3);
  EXPECT_DOUBLE_EQ(params->stages[1].rate, 100);
  EXPECT_EQ(params->stages[2].duration, absl::Seconds(10));
}

TEST(RunSpecStagesTest, RampUpIsAFirstStage) {
  v1::RunSpec spec;
  spec.set_rate(200);
  spec.mutable_duration()->set_seconds(30);
  spec.mutable_ramp_up()->set_seconds(10);
  EXPECT_DOUBLE_EQ(RequestedRateAt(spec, 5), 100);
  EXPECT_DOUBLE_EQ(RequestedRateAt(spec, 20), 200);
}

TEST(RunSpecStagesTest, StagesThatDisagreeAreRefusedNamingTheField) {
  auto refused = [](const std::string& extra) {
    absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(
        R"({"targets": ["127.0.0.1:9000"], "stages": [{"duration": "10s", "rate": 100}])" + extra +
        "}");
    if (!spec.ok()) return std::string(spec.status().message());
    ApplyRunSpecDefaults(&*spec);
    return std::string(ValidateRunSpec(*spec).message());
  };
  EXPECT_EQ(refused(R"(, "duration": "20s")"), "duration: 20s, but the stages last 10s");
  EXPECT_EQ(refused(R"(, "rate": 50)"), "rate: 50, but with stages the rate is their peak, 100");
  EXPECT_EQ(refused(R"(, "ramp_up": "2s")"), "ramp_up: with stages, make the ramp the first stage");
  EXPECT_EQ(refused(R"(, "concurrency": 5)"), "stages: apply to the open model (rate) only");
  EXPECT_EQ(refused(R"(, "rebalance": true)").find("rebalance"), 0u);
}

TEST(RunSpecTagsTest, TagsComeFromJsonAndAreHeldToTheirAlphabetAndSizes) {
  absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(R"({"targets": ["127.0.0.1:9000"],
      "rate": 10, "duration": "1s", "tags": {"build": "1234", "kernel/version": "6.1 rc2"}})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ApplyRunSpecDefaults(&*spec);
  EXPECT_TRUE(ValidateRunSpec(*spec).ok()) << ValidateRunSpec(*spec);
  EXPECT_EQ(spec->tags().at("kernel/version"), "6.1 rc2");

  v1::RunSpec bad = *spec;
  (*bad.mutable_tags())["a\"b"] = "x";
  EXPECT_EQ(ValidateRunSpec(bad).message(), "tags: key 'a\"b': 1 to 64 of A-Z a-z 0-9 _ . - /");
  bad = *spec;
  (*bad.mutable_tags())["note"] = "line\nbreak";
  EXPECT_EQ(ValidateRunSpec(bad).message(), "tags: note: a control character in the value");
  bad = *spec;
  (*bad.mutable_tags())["long"] = std::string(257, 'x');
  EXPECT_EQ(ValidateRunSpec(bad).message(), "tags: long: a value of 257 bytes; at most 256");
  bad = *spec;
  for (int i = 0; i < 31; ++i) (*bad.mutable_tags())[absl::StrCat("k", i)] = "v";
  EXPECT_EQ(ValidateRunSpec(bad).message(), "tags: 33 tags; at most 32");
}

TEST(RunSpecTagsTest, ParseTagSplitsAtTheFirstEquals) {
  absl::StatusOr<std::pair<std::string, std::string>> tag = ParseTag("query=a=b");
  ASSERT_TRUE(tag.ok()) << tag.status();
  EXPECT_EQ(tag->first, "query");
  EXPECT_EQ(tag->second, "a=b");
  tag = ParseTag("empty=");
  ASSERT_TRUE(tag.ok());
  EXPECT_EQ(tag->second, "");
  EXPECT_EQ(ParseTag("novalue").status().message(), "tags: 'novalue': expected key=value");
  EXPECT_FALSE(ParseTag("=v").ok());
}

// A shard's own numbers are checked where they enter the agent: a negative concurrency or
// max_in_flight is refused, not read as "unset" (the spec's default).
TEST(ShardParamsTest, NegativeCountsAreRefusedNotReadAsUnset) {
  v1::Shard shard;
  shard.mutable_spec()->add_targets("127.0.0.1:9000");
  shard.mutable_spec()->mutable_duration()->set_seconds(3);
  ApplyRunSpecDefaults(shard.mutable_spec());
  shard.add_source_ips("127.0.0.2");
  shard.set_rate(50);
  shard.set_max_in_flight(-5);
  EXPECT_NE(EngineParamsFromShard(shard).status().message().find("max_in_flight: is negative"),
            std::string::npos);
  shard.set_max_in_flight(50);
  EXPECT_TRUE(EngineParamsFromShard(shard).ok()) << EngineParamsFromShard(shard).status();
  shard.set_rate(0);
  shard.set_concurrency(-1);
  EXPECT_NE(EngineParamsFromShard(shard).status().message().find("concurrency: is negative"),
            std::string::npos);
}

}  // namespace
}  // namespace churnlab
