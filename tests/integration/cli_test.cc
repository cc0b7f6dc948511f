// Every binary's command line: --help exits 0, bad input exits 2 with a message naming the value.
#include "gtest/gtest.h"
#include "tests/support/child_process.h"

namespace churnlab {
namespace {

using testing::BinaryPath;
using testing::RunCommand;

struct BadInput {
  std::string binary;
  std::vector<std::string> args;
  std::string named;  // the value the error message must name
};

void PrintTo(const BadInput& c, std::ostream* os) { *os << c.binary << " " << c.named; }

class CliBadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(CliBadInputTest, ExitsTwoNamingTheValue) {
  const BadInput& c = GetParam();
  std::vector<std::string> argv = {BinaryPath(c.binary)};
  argv.insert(argv.end(), c.args.begin(), c.args.end());
  absl::StatusOr<testing::CommandResult> r = RunCommand(argv);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2) << r->output;
  EXPECT_NE(r->output.find(c.named), std::string::npos) << r->output;
}

INSTANTIATE_TEST_SUITE_P(
    Binaries, CliBadInputTest,
    ::testing::Values(
        BadInput{"churnlab-churn", {"--target=127.0.0.1:9", "--rate=0"}, "rate"},
        BadInput{"churnlab-churn", {"--target=127.0.0.1:9", "--rate=-3"}, "-3"},
        BadInput{"churnlab-churn", {"--target=127.0.0.1", "--rate=5"}, "'127.0.0.1'"},
        BadInput{"churnlab-churn", {"--target=127.0.0.1:9", "--rate=5", "--bogus=1"}, "--bogus"},
        BadInput{"churnlab-churn",
                 {"--target=127.0.0.1:9", "--rate=5", "--source-ips=192.0.2.55"},
                 "192.0.2.55"},
        BadInput{"churnlab-churn", {"--target=192.0.2.1:80", "--rate=5"}, "192.0.2.1:80"},
        BadInput{"churnlab-churn", {"--target=127.0.0.1:9", "--rate=5", "--close=later"}, "later"},
        BadInput{"churnlab-churn", {"--target=127.0.0.1:9", "--rate=5", "--duration=5"}, "5"},
        BadInput{"churnlab-target", {"--listen=127.0.0.1:70000"}, "70000"},
        BadInput{"churnlab-target", {"--delay=1s..10ms"}, "1s..10ms"},
        BadInput{"churnlab-target", {"--close=sometimes"}, "sometimes"},
        BadInput{"churnlab-target", {"--backlog=0"}, "--backlog=0"},
        BadInput{"churnlab-target", {"--accept-rate=-1"}, "-1"},
        BadInput{"churnlab-target", {"stray"}, "stray"},
        BadInput{"churnlab-coordinator", {"--grpc-listen=nowhere"}, "nowhere"},
        BadInput{"churnlab-agent", {"--source-ips=192.0.2.44"}, "192.0.2.44"},
        BadInput{"churnlab-agent", {"--allow-targets=10.0.0.0/99"}, "10.0.0.0/99"},
        BadInput{"churnlab-agent", {"--max-rate=-2"}, "-2"},
        BadInput{"churnlab", {"launch"}, "launch"},
        BadInput{"churnlab", {"run", "--rate=abc"}, "abc"},
        BadInput{"churnlab",
                 {"run", "--target=127.0.0.1:9", "--rate=5", "--concurrency=5"},
                 "--rate and --concurrency"},
        BadInput{"churnlab", {"run", "--target=127.0.0.1:9", "--close=fin"}, "client-fin, rst"},
        BadInput{"churnlab", {"run", "--target=127.0.0.1:9", "--stage=10s"}, "'10s'"},
        BadInput{"churnlab",
                 {"run", "--target=127.0.0.1:9", "--stage=10s:50", "--duration=20s"},
                 "the stages last 10s"},
        BadInput{"churnlab", {"report", "--format=xml", "r-1"}, "xml"}));

TEST(CliHelpTest, EveryBinaryHasHelpAndExitsZero) {
  for (const char* binary : {"churnlab-churn", "churnlab-target", "churnlab-coordinator",
                             "churnlab-agent", "churnlab"}) {
    absl::StatusOr<testing::CommandResult> r = RunCommand({BinaryPath(binary), "--help"});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 0) << binary;
    EXPECT_NE(r->output.find("Usage: "), std::string::npos) << binary;
  }
}

TEST(CliRunTest, ChurnAgainstTargetPrintsProgressAndSummary) {
  absl::StatusOr<testing::CommandResult> r = RunCommand(
      {BinaryPath("churnlab-churn"), "--target=127.0.0.1:1", "--rate=200", "--duration=1500ms"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->output;
  EXPECT_NE(r->output.find("started"), std::string::npos) << r->output;
  EXPECT_NE(r->output.find("connect ECONNREFUSED 300"), std::string::npos) << r->output;
}

}  // namespace
}  // namespace churnlab
