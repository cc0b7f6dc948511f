// The spec flags of `churnlab run` and `compare`: each lands in its RunSpec field over --spec's
// file, a bad value is refused naming it, and what no flag mentions keeps its value or default.
#include "cli/spec_flags.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/flags.h"
#include "gtest/gtest.h"
#include "proto/run_spec.h"
#include "tests/support/child_process.h"

namespace churnlab {
namespace {

// Parses `args` as `churnlab run` does and builds the spec over `spec_file` ("" for none).
absl::StatusOr<v1::RunSpec> Build(std::vector<std::string> args,
                                  const std::string& spec_file = "") {
  SpecOverrides overrides;
  FlagSet flags("churnlab run", "");
  AddSpecFlags(flags, overrides);
  args.insert(args.begin(), "churnlab run");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  absl::StatusOr<std::vector<std::string>> positional =
      flags.Parse(static_cast<int>(argv.size()), argv.data());
  if (!positional.ok()) return positional.status();
  EXPECT_TRUE(positional->empty());
  return BuildSpec(spec_file, overrides);
}

// The least a spec needs, and `more` after it.
std::vector<std::string> Minimal(std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--target=127.0.0.1:9000", "--rate=100", "--duration=10s"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

int64_t Nanos(const google::protobuf::Duration& d) {
  return d.seconds() * 1'000'000'000 + d.nanos();
}

// Spec files in a fresh directory, removed after the test.
class SpecFileTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  const std::string dir_ = testing::MakeTempDir();
};

TEST(SpecFlagsTest, EachFlagLandsInItsField) {
  absl::StatusOr<v1::RunSpec> spec = Build({
      "--target=127.0.0.1:9000,127.0.0.1:9001",
      "--rate=250.5",
      "--duration=1m30s",
      "--ramp-up=1500ms",
      "--connect-timeout=250ms",
      "--io-timeout=3s",
      "--hold=2s",
      "--close=rst",
      "--protocol=http",
      "--bind=bind",
      "--name=nightly",
      "--requests-per-connection=5",
      "--max-in-flight=700",
      "--agents=a1,a2",
      "--source-ips=127.0.0.2,127.0.0.3",
      "--rebalance",
      "--threshold=error_rate < 0.01",
      "--threshold=connect_p99 < 50ms",
      "--tag=build=1234",
      "--tag=kernel=6.1",
  });
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->targets_size(), 2);
  EXPECT_EQ(spec->targets(0), "127.0.0.1:9000");
  EXPECT_EQ(spec->targets(1), "127.0.0.1:9001");
  EXPECT_DOUBLE_EQ(spec->rate(), 250.5);
  EXPECT_EQ(spec->concurrency(), 0);
  EXPECT_EQ(Nanos(spec->duration()), 90'000'000'000);
  EXPECT_EQ(Nanos(spec->ramp_up()), 1'500'000'000);
  EXPECT_EQ(Nanos(spec->connect_timeout()), 250'000'000);
  EXPECT_EQ(Nanos(spec->io_timeout()), 3'000'000'000);
  EXPECT_EQ(Nanos(spec->hold()), 2'000'000'000);
  EXPECT_EQ(spec->close_policy(), v1::CLOSE_POLICY_RST);
  EXPECT_EQ(spec->protocol(), v1::PROTOCOL_HTTP);
  EXPECT_EQ(spec->bind_mode(), v1::BIND_MODE_BIND);
  EXPECT_EQ(spec->name(), "nightly");
  EXPECT_EQ(spec->requests_per_connection(), 5);
  EXPECT_EQ(spec->max_in_flight(), 700);
  ASSERT_EQ(spec->agent_names_size(), 2);
  EXPECT_EQ(spec->agent_names(0), "a1");
  EXPECT_EQ(spec->agent_names(1), "a2");
  ASSERT_EQ(spec->source_ips_size(), 2);
  EXPECT_EQ(spec->source_ips(0), "127.0.0.2");
  EXPECT_EQ(spec->source_ips(1), "127.0.0.3");
  EXPECT_TRUE(spec->rebalance());
  ASSERT_EQ(spec->thresholds_size(), 2);
  EXPECT_EQ(spec->thresholds(0), "error_rate < 0.01");
  EXPECT_EQ(spec->thresholds(1), "connect_p99 < 50ms");
  ASSERT_EQ(spec->tags_size(), 2);
  EXPECT_EQ(spec->tags().at("build"), "1234");
  EXPECT_EQ(spec->tags().at("kernel"), "6.1");
}

TEST(SpecFlagsTest, ConcurrencyIsTheClosedModel) {
  absl::StatusOr<v1::RunSpec> spec =
      Build({"--target=127.0.0.1:9000", "--concurrency=40", "--duration=10s"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->concurrency(), 40);
  EXPECT_EQ(spec->rate(), 0);
}

// --agents is a count or a list of names, and either replaces the other.
TEST(SpecFlagsTest, AgentsTakesACountOrNames) {
  absl::StatusOr<v1::RunSpec> count = Build(Minimal({"--agents=3", "--ips-per-agent=2"}));
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(count->agents(), 3);
  EXPECT_EQ(count->agent_names_size(), 0);
  EXPECT_EQ(count->source_ips_per_agent(), 2);

  absl::StatusOr<v1::RunSpec> count_after_names = Build(Minimal({"--agents=a1", "--agents=2"}));
  ASSERT_TRUE(count_after_names.ok()) << count_after_names.status();
  EXPECT_EQ(count_after_names->agents(), 2);
  EXPECT_EQ(count_after_names->agent_names_size(), 0);

  absl::StatusOr<v1::RunSpec> one_name = Build(Minimal({"--agents=edge-1"}));
  ASSERT_TRUE(one_name.ok()) << one_name.status();
  ASSERT_EQ(one_name->agent_names_size(), 1);
  EXPECT_EQ(one_name->agent_names(0), "edge-1");
}

TEST(SpecFlagsTest, RebalanceTakesTrueOrFalse) {
  absl::StatusOr<v1::RunSpec> off = Build(Minimal({"--rebalance=false"}));
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->rebalance());
  absl::StatusOr<v1::RunSpec> on = Build(Minimal({"--rebalance=true"}));
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->rebalance());
}

// Without flags beyond the required ones, every field keeps ApplyRunSpecDefaults' value.
TEST(SpecFlagsTest, AbsentFlagsLeaveTheDefaults) {
  absl::StatusOr<v1::RunSpec> spec = Build(Minimal());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "");
  EXPECT_EQ(spec->protocol(), v1::PROTOCOL_COUNTER);
  EXPECT_EQ(spec->close_policy(), v1::CLOSE_POLICY_CLIENT_FIN);
  EXPECT_EQ(spec->bind_mode(), v1::BIND_MODE_NO_PORT);
  EXPECT_EQ(spec->requests_per_connection(), 1);
  EXPECT_EQ(Nanos(spec->connect_timeout()), 1'000'000'000);
  EXPECT_EQ(Nanos(spec->io_timeout()), 2'000'000'000);
  EXPECT_EQ(spec->max_in_flight(), 10000);
  EXPECT_FALSE(spec->has_ramp_up());
  EXPECT_FALSE(spec->has_hold());
  EXPECT_EQ(spec->stages_size(), 0);
  EXPECT_EQ(spec->agents(), 0);
  EXPECT_EQ(spec->agent_names_size(), 0);
  EXPECT_EQ(spec->source_ips_per_agent(), 0);
  EXPECT_EQ(spec->source_ips_size(), 0);
  EXPECT_EQ(spec->thresholds_size(), 0);
  EXPECT_EQ(spec->tags_size(), 0);
  EXPECT_FALSE(spec->rebalance());
}

TEST(SpecFlagsTest, NoSpecAndNoFlagsIsRefusedNamingTheTargets) {
  absl::StatusOr<v1::RunSpec> spec = Build({});
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("targets"), absl::string_view::npos) << spec.status();
}

// Three stages: up to 100/s over 10 s, 30 s at 100/s, down over 10 s. Their peak is the rate
// and their sum the duration, unless --rate or --duration says otherwise (then they must agree).
TEST(SpecFlagsTest, StagesSetTheRateAndDuration) {
  absl::StatusOr<v1::RunSpec> spec =
      Build({"--target=127.0.0.1:9000", "--stage=10s:100", "--stage=30s:100", "--stage=10s:0"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->stages_size(), 3);
  EXPECT_EQ(Nanos(spec->stages(0).duration()), 10'000'000'000);
  EXPECT_DOUBLE_EQ(spec->stages(0).rate(), 100);
  EXPECT_EQ(Nanos(spec->stages(1).duration()), 30'000'000'000);
  EXPECT_DOUBLE_EQ(spec->stages(1).rate(), 100);
  EXPECT_EQ(Nanos(spec->stages(2).duration()), 10'000'000'000);
  EXPECT_DOUBLE_EQ(spec->stages(2).rate(), 0);
  EXPECT_DOUBLE_EQ(spec->rate(), 100);
  EXPECT_EQ(Nanos(spec->duration()), 50'000'000'000);

  absl::StatusOr<v1::RunSpec> agreeing =
      Build({"--target=127.0.0.1:9000", "--rate=100", "--duration=50s", "--stage=10s:100",
             "--stage=30s:100", "--stage=10s:0"});
  ASSERT_TRUE(agreeing.ok()) << agreeing.status();
  EXPECT_EQ(agreeing->stages_size(), 3);

  absl::StatusOr<v1::RunSpec> short_duration =
      Build({"--target=127.0.0.1:9000", "--stage=10s:100", "--stage=30s:100", "--duration=20s"});
  ASSERT_FALSE(short_duration.ok());
  EXPECT_NE(short_duration.status().message().find("the stages last 40s"), absl::string_view::npos)
      << short_duration.status();
}

TEST(SpecFlagsTest, RateAndConcurrencyTogetherAreRefused) {
  absl::StatusOr<v1::RunSpec> spec =
      Build({"--target=127.0.0.1:9000", "--rate=5", "--concurrency=5", "--duration=10s"});
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("--rate and --concurrency"), absl::string_view::npos)
      << spec.status();
}

struct BadValue {
  std::string flag;     // given after the required flags, so it is the one that counts
  std::string named;    // the error must name it
  bool closed = false;  // the required flags without --rate (for --concurrency)
};

void PrintTo(const BadValue& b, std::ostream* os) { *os << b.flag; }

class SpecFlagsBadValueTest : public ::testing::TestWithParam<BadValue> {};

// Whether the flag parser or BuildSpec finds it, a bad value is INVALID_ARGUMENT naming it.
TEST_P(SpecFlagsBadValueTest, IsRefusedNamingTheValue) {
  const BadValue& b = GetParam();
  std::vector<std::string> args =
      b.closed ? std::vector<std::string>{"--target=127.0.0.1:9000", "--duration=10s", b.flag}
               : Minimal({b.flag});
  absl::StatusOr<v1::RunSpec> spec = Build(args);
  ASSERT_FALSE(spec.ok()) << spec->DebugString();
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find(b.named), absl::string_view::npos) << spec.status();
  // A value that does not parse is named with its flag too, whichever step finds it.
  if (b.named.front() == '\'') {
    EXPECT_NE(spec.status().message().find(b.flag), absl::string_view::npos) << spec.status();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Flags, SpecFlagsBadValueTest,
    ::testing::Values(
        BadValue{"--rate=abc", "'abc' is not a finite number"},
        BadValue{"--rate=nan", "'nan' is not a finite number"}, BadValue{"--rate=-3", "-3"},
        BadValue{"--concurrency=many", "'many' is not an integer", true},
        BadValue{"--concurrency=-4", "-4", true}, BadValue{"--duration=5", "'5' is not a duration"},
        BadValue{"--duration=-5s", "-5s"}, BadValue{"--ramp-up=soon", "'soon' is not a duration"},
        BadValue{"--connect-timeout=1", "'1' is not a duration"},
        BadValue{"--io-timeout=2x", "'2x' is not a duration"},
        BadValue{"--hold=later", "'later' is not a duration"}, BadValue{"--hold=25h", "25h"},
        BadValue{"--close=fin", "\"fin\" is not one of client-fin, rst, server-fin"},
        BadValue{"--protocol=grpc", "\"grpc\" is not one of counter, http"},
        BadValue{"--bind=port", "\"port\" is not one of none, no-port, bind"},
        BadValue{"--requests-per-connection=1.5", "'1.5' is not an integer"},
        BadValue{"--requests-per-connection=2000000", "2000000"},
        BadValue{"--max-in-flight=lots", "'lots' is not an integer"},
        BadValue{"--ips-per-agent=two", "'two' is not an integer"},
        BadValue{"--ips-per-agent=-1", "-1"}, BadValue{"--agents=-2", "-2"},
        BadValue{"--target=127.0.0.1", "127.0.0.1"}, BadValue{"--source-ips=10.0.1", "10.0.1"},
        BadValue{"--tag=nokey", "nokey"},
        BadValue{"--threshold=error_rate << 1", "error_rate << 1"},
        BadValue{"--stage=10s", "'10s' is not DURATION:RATE"},
        BadValue{"--stage=fast:100", "'fast:100' is not DURATION:RATE"},
        BadValue{"--stage=10s:lots", "'10s:lots' is not DURATION:RATE"},
        BadValue{"--stage=10s:100:junk", "'10s:100:junk' is not DURATION:RATE"},
        // 0 would quietly become the default (1 and 10,000): refused instead.
        BadValue{"--requests-per-connection=-1", "--requests-per-connection=-1: -1 is less than 0"},
        BadValue{"--max-in-flight=0", "--max-in-flight=0: 0 is less than 1"},
        BadValue{"--rebalance=maybe", "--rebalance=maybe"}, BadValue{"--bogus=1", "--bogus"}));

// Flags override the file field by field; what no flag mentions keeps the file's value.
TEST_F(SpecFileTest, FlagsOverrideTheFileAndTheRestIsKept) {
  const std::string file = Write("spec.json", R"({
    "name": "from file",
    "targets": ["127.0.0.1:9000", "127.0.0.1:9001"],
    "rate": 300,
    "duration": "20s",
    "rampUp": "5s",
    "ioTimeout": "5s",
    "close_policy": "server-fin",
    "maxInFlight": 600,
    "thresholds": ["error_rate < 0.01"],
    "tags": {"build": "1", "kernel": "6.1"}
  })");
  absl::StatusOr<v1::RunSpec> spec =
      Build({"--name=override", "--target=127.0.0.1:9100", "--rate=50",
             "--threshold=connect_p99 < 50ms", "--tag=build=2"},
            file);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "override");
  ASSERT_EQ(spec->targets_size(), 1);  // the list replaces the file's
  EXPECT_EQ(spec->targets(0), "127.0.0.1:9100");
  EXPECT_DOUBLE_EQ(spec->rate(), 50);
  // Repeatable flags add to the file's: one more threshold, one tag replaced.
  ASSERT_EQ(spec->thresholds_size(), 2);
  EXPECT_EQ(spec->thresholds(0), "error_rate < 0.01");
  EXPECT_EQ(spec->thresholds(1), "connect_p99 < 50ms");
  EXPECT_EQ(spec->tags().at("build"), "2");
  EXPECT_EQ(spec->tags().at("kernel"), "6.1");
  // Untouched by any flag.
  EXPECT_EQ(Nanos(spec->duration()), 20'000'000'000);
  EXPECT_EQ(Nanos(spec->ramp_up()), 5'000'000'000);
  EXPECT_EQ(Nanos(spec->io_timeout()), 5'000'000'000);
  EXPECT_EQ(spec->close_policy(), v1::CLOSE_POLICY_SERVER_FIN);
  EXPECT_EQ(spec->max_in_flight(), 600);
  EXPECT_EQ(Nanos(spec->connect_timeout()), 1'000'000'000);  // the default, as without flags

  absl::StatusOr<v1::RunSpec> unchanged = Build({}, file);
  ASSERT_TRUE(unchanged.ok()) << unchanged.status();
  EXPECT_EQ(unchanged->name(), "from file");
  EXPECT_DOUBLE_EQ(unchanged->rate(), 300);
  EXPECT_EQ(unchanged->targets_size(), 2);
}

// Either model flag replaces the file's model.
TEST_F(SpecFileTest, AModelFlagReplacesTheFilesModel) {
  const std::string closed = Write(
      "closed.json", R"({"targets": ["127.0.0.1:9000"], "concurrency": 20, "duration": "10s"})");
  absl::StatusOr<v1::RunSpec> open = Build({"--rate=100"}, closed);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_DOUBLE_EQ(open->rate(), 100);
  EXPECT_EQ(open->concurrency(), 0);

  const std::string opened =
      Write("open.json", R"({"targets": ["127.0.0.1:9000"], "rate": 100, "duration": "10s"})");
  absl::StatusOr<v1::RunSpec> closed_again = Build({"--concurrency=30"}, opened);
  ASSERT_TRUE(closed_again.ok()) << closed_again.status();
  EXPECT_EQ(closed_again->concurrency(), 30);
  EXPECT_EQ(closed_again->rate(), 0);
}

// --stage replaces the file's stages and ramp; its rate and duration follow the new stages.
TEST_F(SpecFileTest, StageFlagsReplaceTheFilesProfile) {
  const std::string file = Write("ramp.json", R"({"targets": ["127.0.0.1:9000"], "rate": 300,
      "duration": "20s", "rampUp": "5s"})");
  absl::StatusOr<v1::RunSpec> spec = Build({"--stage=5s:50", "--stage=15s:50"}, file);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->stages_size(), 2);
  EXPECT_FALSE(spec->has_ramp_up());
  EXPECT_DOUBLE_EQ(spec->rate(), 50);
  EXPECT_EQ(Nanos(spec->duration()), 20'000'000'000);
}

TEST_F(SpecFileTest, AFileThatCannotBeUsedIsNamed) {
  const std::string missing = dir_ + "/missing.json";
  absl::StatusOr<v1::RunSpec> spec = Build(Minimal(), missing);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(),
            "--spec: cannot read '" + missing + "': No such file or directory");

  const std::string typo = Write("typo.json", R"({"targets": ["127.0.0.1:9000"], "ratee": 5})");
  spec = Build(Minimal(), typo);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message().rfind(typo + ": ", 0), 0u) << spec.status();
  EXPECT_NE(spec.status().message().find("ratee"), absl::string_view::npos) << spec.status();

  // Past kMaxSpecJsonBytes the file is refused by size, not read whole.
  const std::string huge = Write("huge.json", std::string(kMaxSpecJsonBytes + 10, ' '));
  spec = Build(Minimal(), huge);
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("over the size limit of 1048576 bytes"),
            absl::string_view::npos)
      << spec.status();
}

}  // namespace
}  // namespace churnlab
