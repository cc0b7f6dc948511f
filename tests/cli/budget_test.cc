// `churnlab budget`: how its flags and presets become the planned host (checked against numbers
// worked out by hand), its exit codes, and the text FormatBudgetPlan prints.
#include "cli/budget.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "analysis/tuple_budget.h"
#include "common/flags.h"
#include "gtest/gtest.h"
#include "proto/message_json.h"

namespace churnlab {
namespace {

struct Output {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// `churnlab budget ARGS` in this process, called as cli_main calls it (argv[0] is "budget").
int CallBudget(std::vector<std::string> args) {
  args.insert(args.begin(), "budget");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  return BudgetCommand(static_cast<int>(argv.size()), argv.data());
}

// CallBudget with stdout and stderr captured: the command prints its plan.
Output RunBudget(std::vector<std::string> args) {
  Output r;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  r.exit_code = CallBudget(std::move(args));
  r.err = ::testing::internal::GetCapturedStderr();
  r.out = ::testing::internal::GetCapturedStdout();
  return r;
}

// The BudgetPlan `churnlab budget --json ARGS` prints; a test failure unless the command exits
// `exit_code` and prints one.
v1::BudgetPlan JsonPlan(std::vector<std::string> args, int exit_code = kExitOk) {
  args.push_back("--json");
  Output r = RunBudget(args);
  EXPECT_EQ(r.exit_code, exit_code) << r.err << r.out;
  v1::BudgetPlan plan;
  absl::Status parsed = ParseMessageJson(r.out, &plan);
  EXPECT_TRUE(parsed.ok()) << parsed << "\n" << r.out;
  return plan;
}

void ExpectHas(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << part << "\n---\n" << text;
}

struct PresetCase {
  std::vector<std::string> args;
  std::string os;
  uint32_t port_low;
  uint32_t port_high;
  uint64_t ports;  // port_high - port_low + 1
  double time_wait_s;
  uint32_t tw_reuse;
};

void PrintTo(const PresetCase& c, std::ostream* os) {
  for (const std::string& arg : c.args) *os << arg << " ";
}

class BudgetPresetTest : public ::testing::TestWithParam<PresetCase> {};

// Each preset's port range and TIME_WAIT, and the budget they give one source:
// ports / TIME_WAIT seconds.
TEST_P(BudgetPresetTest, FillsPortsAndTimeWait) {
  const PresetCase& c = GetParam();
  v1::BudgetPlan plan = JsonPlan(c.args);
  EXPECT_EQ(Word(plan.os()), c.os);
  EXPECT_EQ(plan.port_low(), c.port_low);
  EXPECT_EQ(plan.port_high(), c.port_high);
  EXPECT_EQ(plan.per_source().ports(), c.ports);
  EXPECT_DOUBLE_EQ(plan.time_wait_s(), c.time_wait_s);
  EXPECT_EQ(plan.tw_reuse(), c.tw_reuse);
  EXPECT_EQ(plan.sources(), 1u);
  EXPECT_EQ(plan.destinations(), 1u);
  EXPECT_EQ(plan.close_policy(), v1::CLOSE_POLICY_CLIENT_FIN);
  EXPECT_EQ(plan.bind_mode(), v1::BIND_MODE_NO_PORT);
  EXPECT_DOUBLE_EQ(plan.total_rate(), static_cast<double>(c.ports) / c.time_wait_s);
}

INSTANTIATE_TEST_SUITE_P(
    Presets, BudgetPresetTest,
    ::testing::Values(
        // No preset and no Windows registry value: linux.
        PresetCase{{}, "linux", 32768, 60999, 28232, 60, 2},
        PresetCase{{"--preset=linux"}, "linux", 32768, 60999, 28232, 60, 2},
        PresetCase{{"--preset=windows"}, "windows", 49152, 65535, 16384, 240, 0},
        PresetCase{{"--preset=windows-legacy"}, "windows", 1025, 5000, 3976, 240, 0},
        // A registry value alone picks the Windows preset it belongs to.
        PresetCase{{"--tcp-timed-wait-delay=60"}, "windows", 49152, 65535, 16384, 60, 0},
        PresetCase{{"--max-user-port=10000"}, "windows", 1025, 10000, 8976, 240, 0},
        PresetCase{{"--max-user-port=65534", "--tcp-timed-wait-delay=30"},
                   "windows",
                   1025,
                   65534,
                   64510,
                   30,
                   0},
        // Flags override the preset's numbers.
        PresetCase{{"--preset=windows", "--port-range=50000-50999", "--time-wait=2m"},
                   "windows",
                   50000,
                   50999,
                   1000,
                   120,
                   0},
        PresetCase{{"--port-range=40000-40999", "--time-wait=30s", "--tw-reuse=0"},
                   "linux",
                   40000,
                   40999,
                   1000,
                   30,
                   0}));

// 4 sources x 2 destinations x 1000 ports / 60 s = 133.3/s. At 200/s each source is asked 50/s
// of its 33.3/s: its 2000 tuples last 2000 / 50 = 40 s, 8000 connections over the four.
TEST(BudgetCommandTest, SourcesAndDestinationsMultiplyTheBudget) {
  v1::BudgetPlan plan = JsonPlan({"--sources=4", "--destinations=2", "--port-range=40000-40999",
                                  "--time-wait=60s", "--rate=200"},
                                 kExitFailed);
  EXPECT_EQ(plan.sources(), 4u);
  EXPECT_EQ(plan.per_source().destinations(), 2u);
  EXPECT_DOUBLE_EQ(plan.per_source().budget_rate(), 2000.0 / 60);
  EXPECT_DOUBLE_EQ(plan.total_rate(), 4 * 2000.0 / 60);
  EXPECT_DOUBLE_EQ(plan.per_source().requested_rate(), 50);
  EXPECT_DOUBLE_EQ(plan.exhaustion_after_s(), 40);
  EXPECT_EQ(plan.connections_until_exhaustion(), 8000u);

  // --bind=bind reserves a port for every destination: 1000 / 60 per source.
  v1::BudgetPlan bind =
      JsonPlan({"--sources=4", "--destinations=2", "--port-range=40000-40999", "--bind=bind"});
  EXPECT_EQ(bind.bind_mode(), v1::BIND_MODE_BIND);
  EXPECT_EQ(bind.per_source().destinations(), 1u);
  EXPECT_DOUBLE_EQ(bind.total_rate(), 4 * 1000.0 / 60);
}

// Linux defaults: 28232 ports / 60 s = 470.53/s. 470/s lasts; 1000/s runs out after
// 28232 / 1000 = 28.232 s.
TEST(BudgetCommandTest, ExitsOneOnlyWhenTheRateRunsThePortsOut) {
  v1::BudgetPlan within = JsonPlan({"--rate=470"}, kExitOk);
  EXPECT_DOUBLE_EQ(within.rate(), 470);
  EXPECT_EQ(within.exhaustion_after_s(), 0);
  EXPECT_EQ(within.connections_until_exhaustion(), 0u);

  v1::BudgetPlan over = JsonPlan({"--rate=1000"}, kExitFailed);
  EXPECT_DOUBLE_EQ(over.exhaustion_after_s(), 28.232);
  EXPECT_EQ(over.connections_until_exhaustion(), 28232u);

  // No --rate: nothing to run out.
  Output none = RunBudget({});
  EXPECT_EQ(none.exit_code, kExitOk) << none.err;
  ExpectHas(none.out, "sustainable:  471 new connections/s");
}

// The command: reuse on 100 ports sustains 100/s, so 100,000/s runs them out (exit 1).
TEST(BudgetCommandTest, ReuseOnAHundredPortsRunsOutAtAHundredThousand) {
  Output out = RunBudget({"--tw-reuse=1", "--port-range=40000-40099", "--rate=100000"});
  EXPECT_EQ(out.exit_code, kExitFailed) << out.out;
  ExpectHas(out.out, "one source:   100 ports x 1 destination(s) / 1 s (tcp_tw_reuse_delay)");
  ExpectHas(out.out, "ports run out after 0.001 s, after 100 connections; then 100/s");
  Output untimed = RunBudget({"--tw-reuse=1", "--timestamps=0", "--port-range=40000-40099"});
  ExpectHas(untimed.out, "/ 60 s = 2/s");
  ExpectHas(untimed.out, "tcp_timestamps=0");
  Output delay = RunBudget(
      {"--tw-reuse=1", "--tw-reuse-delay=100ms", "--rate=500", "--port-range=40000-40099"});
  EXPECT_EQ(delay.exit_code, kExitOk) << delay.out;
  ExpectHas(delay.out, "sustainable:  1000 new connections/s");
  Output windows = RunBudget({"--preset=windows", "--timestamps=1"});
  EXPECT_EQ(windows.exit_code, kExitBadInput);
  ExpectHas(windows.err, "are Linux settings");
}

TEST(BudgetCommandTest, HoldAnswersHowManyConnectionsTheHostHolds) {
  Output out = RunBudget(
      {"--hold=1000000", "--sources=40", "--same-host", "--file-max=1228800", "--memory=16GiB"});
  EXPECT_EQ(out.exit_code, kExitFailed) << out.out;
  ExpectHas(out.out, "This host can hold about 614400 connections at once; fs.file-max binds");
  Output fits = RunBudget({"--hold=500000", "--sources=40", "--file-max=1228800"});
  EXPECT_EQ(fits.exit_code, kExitOk) << fits.out;
  ExpectHas(fits.out, "500000 at once fit");
  Output alone = RunBudget({"--file-max=100"});
  EXPECT_EQ(alone.exit_code, kExitBadInput);
  ExpectHas(alone.err, "go with --hold=N");
}

// What shortens or lifts the TIME_WAIT limit reaches the plan: at 1000/s the ports then last.
TEST(BudgetCommandTest, ReuseLoopbackAndClosePolicyReachThePlan) {
  v1::BudgetPlan reuse = JsonPlan({"--tw-reuse=1", "--rate=1000"});
  EXPECT_EQ(reuse.tw_reuse(), 1u);
  EXPECT_EQ(reuse.timestamps(), 1u);
  EXPECT_EQ(reuse.per_source().limit(), v1::PORT_LIMIT_TW_REUSE);
  EXPECT_DOUBLE_EQ(reuse.per_source().hold_s(), 1);
  EXPECT_EQ(reuse.exhaustion_after_s(), 0);

  // tcp_tw_reuse's default, 2, applies to loopback connections only.
  v1::BudgetPlan loopback = JsonPlan({"--loopback", "--rate=1000"});
  EXPECT_TRUE(loopback.loopback());
  EXPECT_EQ(loopback.per_source().limit(), v1::PORT_LIMIT_TW_REUSE);

  v1::BudgetPlan server = JsonPlan({"--close=server-fin", "--rate=1000"});
  EXPECT_EQ(server.close_policy(), v1::CLOSE_POLICY_SERVER_FIN);
  EXPECT_EQ(server.time_wait_side(), v1::TIME_WAIT_SIDE_SERVER);
  EXPECT_EQ(server.per_source().limit(), v1::PORT_LIMIT_NO_CLIENT_TIME_WAIT);

  // Bind mode engine against a server that answers with TCP timestamps: each TIME_WAIT taken
  // over after 0.2 s, as a run's report counts it (1,000 ports: 5,000/s, not 17/s).
  v1::BudgetPlan engine = JsonPlan({"--port-range=40000-40999", "--tw-reuse=0", "--bind=engine",
                                    "--server-timestamps", "--rate=300"});
  EXPECT_TRUE(engine.server_timestamps());
  EXPECT_EQ(engine.per_source().limit(), v1::PORT_LIMIT_TAKEN_OVER);
  EXPECT_DOUBLE_EQ(engine.total_rate(), 1000 / 0.2);
  EXPECT_EQ(engine.exhaustion_after_s(), 0);
}

// 100 requests on each of 16384 / 240 = 68.27 connections/s.
TEST(BudgetCommandTest, RequestsPerConnectionMultiplyTheRequestRate) {
  v1::BudgetPlan plan = JsonPlan({"--preset=windows", "--requests-per-connection=100"});
  EXPECT_EQ(plan.requests_per_connection(), 100);
  EXPECT_DOUBLE_EQ(plan.total_rate(), 16384.0 / 240);
  EXPECT_DOUBLE_EQ(plan.total_request_rate(), 100 * 16384.0 / 240);
}

struct Refused {
  std::vector<std::string> args;
  std::string named;  // what the error must name
};

void PrintTo(const Refused& c, std::ostream* os) { *os << c.named; }

class BudgetRefusesTest : public ::testing::TestWithParam<Refused> {};

// Flags that parse but contradict each other or the preset: exit 2, nothing on stdout, and a
// message naming the flags.
TEST_P(BudgetRefusesTest, ExitsTwoNamingTheConflict) {
  const Refused& c = GetParam();
  Output r = RunBudget(c.args);
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.out;
  EXPECT_EQ(r.out, "");
  ExpectHas(r.err, "churnlab budget: ");
  ExpectHas(r.err, c.named);
}

INSTANTIATE_TEST_SUITE_P(
    Conflicts, BudgetRefusesTest,
    ::testing::Values(
        Refused{{"--preset=macos"}, "--preset=macos: unknown preset"},
        Refused{{"--preset=linux", "--max-user-port=6000"}, "--preset=linux is not Windows"},
        Refused{{"--preset=linux", "--tcp-timed-wait-delay=30"}, "--preset=linux is not Windows"},
        Refused{{"--preset=windows", "--tw-reuse=1"},
                "--tw-reuse, --timestamps, --tw-reuse-delay and --server-timestamps are Linux "
                "settings"},
        Refused{{"--max-user-port=6000", "--tw-reuse=1"}, "--preset=windows-legacy is Windows"},
        Refused{{"--time-wait=30s", "--tcp-timed-wait-delay=30"},
                "give --time-wait or --tcp-timed-wait-delay, not both"},
        Refused{{"--port-range=40000-40999", "--max-user-port=6000"},
                "give --port-range or --max-user-port, not both"},
        Refused{{"--bind=none", "--sources=2"}, "--sources=2 with --bind=none"}));

// A value out of its range never reaches the planner: the flag parser exits 2 naming flag and
// value. (Not through RunBudget: the death test captures stderr itself.)
class BudgetBadValueDeathTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BudgetBadValueDeathTest, ExitsTwoNamingTheValue) {
  const std::string& arg = GetParam();
  EXPECT_EXIT(CallBudget({arg}), ::testing::ExitedWithCode(kExitBadInput),
              "churnlab budget: " + arg + ": expected");
}

INSTANTIATE_TEST_SUITE_P(Values, BudgetBadValueDeathTest,
                         ::testing::Values("--port-range=0-100", "--port-range=1000-70000",
                                           "--port-range=40000", "--time-wait=0s", "--time-wait=2h",
                                           "--tcp-timed-wait-delay=301", "--max-user-port=4999",
                                           "--tw-reuse=3", "--rate=-5", "--rate=6e6",
                                           "--requests-per-connection=0", "--destinations=x"));

// The text of the plan `churnlab budget` prints, from the planner's own plan: Linux defaults at
// 1000/s.
TEST(FormatBudgetPlanTest, LinuxAt1000PerSecond) {
  analysis::PlanInputs in;
  in.rate = 1000;
  const std::string text = FormatBudgetPlan(analysis::PlanBudget(in));
  ExpectHas(text,
            "Tuple budget (linux): 1 source IP(s) x 1 destination(s), ports 32768-60999 (28232), "
            "TIME_WAIT 60 s, close client-fin, bind no-port, tcp_tw_reuse 2 (timestamps 1, delay "
            "1 s), 1 request(s) per connection\n\n");
  ExpectHas(text, "  one source:   28232 ports x 1 destination(s) / 60 s = 471/s\n");
  ExpectHas(text, "  sustainable:  471 new connections/s (471 requests/s)\n");
  ExpectHas(text,
            "  at 1000/s:    ports run out after 28.2 s, after 28232 connections; then 471/s\n");
  ExpectHas(text, "  out of ports: Linux EADDRNOTAVAIL (\"Cannot assign requested address\")\n");
  ExpectHas(text, "                Windows 10048 WSAEADDRINUSE (SocketError.AddressAlreadyInUse)");
  ExpectHas(text, "\nWhat changes it most:\n  server closes first ");
  ExpectHas(text, "lifts the limit");
  ExpectHas(text, "  tcp_tw_reuse=1                     28232/s, x60.0");
  ExpectHas(text, "  note: ");
}

// Windows has no tcp_tw_reuse, so the header leaves it out; a rate within the budget says so.
TEST(FormatBudgetPlanTest, WindowsWithinBudget) {
  analysis::PlanInputs in;
  in.os = analysis::HostOs::kWindows;
  in.port_low = 49152;
  in.port_high = 65535;
  in.time_wait_s = 240;
  in.tw_reuse = 0;
  in.rate = 50;  // of 16384 / 240 = 68.3/s
  const std::string text = FormatBudgetPlan(analysis::PlanBudget(in));
  ExpectHas(text,
            "Tuple budget (windows): 1 source IP(s) x 1 destination(s), ports 49152-65535 "
            "(16384), TIME_WAIT 240 s, close client-fin, bind no-port, 1 request(s)");
  EXPECT_EQ(text.find("tcp_tw_reuse"), std::string::npos) << text;
  ExpectHas(text, "  one source:   16384 ports x 1 destination(s) / 240 s = 68/s\n");
  ExpectHas(text, "  at 50/s:      ports do not run out\n");
}

// The parts that depend on what a plan holds: no rate, no Windows error, levers that multiply
// the budget, notes.
TEST(FormatBudgetPlanTest, LeversNotesAndOptionalLines) {
  v1::BudgetPlan plan;
  plan.set_os(v1::HOST_OS_LINUX);
  plan.set_sources(1);
  plan.set_destinations(1);
  plan.set_port_low(40000);
  plan.set_port_high(40999);
  plan.set_time_wait_s(60);
  plan.set_tw_reuse(0);
  plan.set_close_policy(v1::CLOSE_POLICY_CLIENT_FIN);
  plan.set_bind_mode(v1::BIND_MODE_NO_PORT);
  plan.set_requests_per_connection(1);
  plan.mutable_per_source()->set_ports(1000);
  plan.mutable_per_source()->set_destinations(1);
  plan.mutable_per_source()->set_budget_rate(1000.0 / 60);
  plan.mutable_per_source()->set_hold_s(60);
  plan.set_total_rate(1000.0 / 60);
  plan.set_total_request_rate(1000.0 / 60);
  plan.set_linux_error("ENOSUCHERROR");
  plan.set_summary("The summary.");
  v1::BudgetLever* lever = plan.add_levers();
  lever->set_change("3 source IPs");
  lever->set_sustainable_rate(50);
  lever->set_factor(3);
  lever->set_why("add addresses");
  plan.add_notes("first note");
  plan.add_notes("second note");

  const std::string text = FormatBudgetPlan(plan);
  ExpectHas(text, ", tcp_tw_reuse 0 (timestamps 0, delay 0 s), ");
  EXPECT_EQ(text.find(" at "), std::string::npos) << text;
  // A name that is no errno is shown as it is.
  ExpectHas(text, "  out of ports: Linux ENOSUCHERROR\n\nThe summary.\n");
  EXPECT_EQ(text.find("Windows"), std::string::npos) << text;
  ExpectHas(text, "What changes it most:\n  3 source IPs");
  ExpectHas(text, " 50/s, x3.0 ");
  ExpectHas(text, " add addresses\n");
  ExpectHas(text, "\n\n  note: first note\n  note: second note\n");

  plan.clear_levers();
  plan.clear_notes();
  const std::string bare = FormatBudgetPlan(plan);
  EXPECT_EQ(bare.find("What changes it most"), std::string::npos) << bare;
  EXPECT_EQ(bare.find("note:"), std::string::npos) << bare;
  EXPECT_TRUE(absl::EndsWith(bare, "\n\nThe summary.\n")) << bare;
}

}  // namespace
}  // namespace churnlab
