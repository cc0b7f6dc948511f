// Every scenario in scenarios/, run in a network namespace of its own: the phenomenon shows up
// in the report's telemetry and errno counts, and its fix removes it.
#include <unistd.h>

#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "churnlab/v1/report.pb.h"
#include "gtest/gtest.h"
#include "tests/support/netns_lab.h"

namespace churnlab {
namespace {

uint64_t Errors(const v1::RunReport& r, const std::string& key) {
  auto it = r.errors().find(key);
  return it == r.errors().end() ? 0 : it->second;
}

int64_t Kernel(const v1::RunReport& r, const std::string& key) {
  auto it = r.kernel_counters().find(key);
  return it == r.kernel_counters().end() ? 0 : it->second;
}

struct Scenario {
  std::string name;                       // the tests' name
  std::string spec;                       // scenarios/<spec>.json
  std::vector<std::string> target_flags;  // how churnlab-target runs
  int target_ports = 1;                   // listening addresses of the target
  std::vector<std::string> run_flags;     // overrides, e.g. the fix
  bool small_port_range = true;
  int exit_code = 0;
  std::function<void(const v1::RunReport&, std::map<std::string, uint64_t>& target)> check;
};

void PrintTo(const Scenario& s, std::ostream* os) { *os << s.name; }

class ScenarioTest : public ::testing::TestWithParam<Scenario> {};

TEST_P(ScenarioTest, ShowsItsPhenomenonOrItsFix) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces (ip netns add)";
  const Scenario& s = GetParam();
  absl::StatusOr<std::unique_ptr<testing::NetnsLab>> lab =
      testing::NetnsLab::Create("sc", s.small_port_range);
  ASSERT_TRUE(lab.ok()) << lab.status();
  ASSERT_TRUE((*lab)->StartCoordinator().ok());
  // The target also attaches as an observer, reporting the server side.
  std::vector<std::string> target_flags = s.target_flags;
  target_flags.push_back("--coordinator=" + (*lab)->coordinator());
  std::vector<std::string> listen(s.target_ports, "127.0.0.1:0");
  target_flags.push_back("--listen=" + absl::StrJoin(listen, ","));
  absl::StatusOr<testing::TargetProcess> target = (*lab)->StartTarget(target_flags);
  ASSERT_TRUE(target.ok()) << target.status();
  ASSERT_TRUE((*lab)->StartAgent("a1", "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5").ok());

  std::vector<std::string> args = {"--spec=" + std::string(CHURNLAB_SOURCE_DIR) + "/scenarios/" +
                                   s.spec + ".json"};
  args.push_back("--target=" + target->address_list);
  args.insert(args.end(), s.run_flags.begin(), s.run_flags.end());
  v1::RunReport report;
  int code = (*lab)->Churnlab("run", args, &report);
  std::map<std::string, uint64_t> served = target->StopAndReadCounters();
  ASSERT_EQ(code, s.exit_code) << (*lab)->output();
  EXPECT_EQ(report.totals().attempted(), report.totals().succeeded() + report.totals().failed());
  s.check(report, served);
}

INSTANTIATE_TEST_SUITE_P(
    Scenarios, ScenarioTest,
    ::testing::Values(
        Scenario{"time_wait_one_source",
                 "time-wait",
                 {},
                 1,
                 {"--agents=1", "--ips-per-agent=1"},
                 true,
                 1,
                 [](const v1::RunReport& r, auto&) {
                   EXPECT_GE(Errors(r, "EADDRNOTAVAIL"), 500u);
                   EXPECT_GE(r.agents(0).sources(0).peak_time_wait(), 990u);
                 }},
        Scenario{"time_wait_four_sources",
                 "time-wait",
                 {},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, auto&) {
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_EQ(r.agents(0).sources_size(), 4);
                 }},
        Scenario{"more_destinations",
                 "more-destinations",
                 {},
                 4,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, auto&) {
                   EXPECT_EQ(r.totals().attempted(), 1600u);
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_EQ(r.tuple_budget().sources(0).destinations(), 4u);
                 }},
        Scenario{"bind_reserves_ports",
                 "bind-vs-no-port",
                 {},
                 2,
                 {},
                 true,
                 1,
                 [](const v1::RunReport& r, auto&) {
                   EXPECT_GE(Errors(r, "EADDRINUSE"), 400u);
                   EXPECT_EQ(r.tuple_budget().sources(0).destinations(), 1u);
                 }},
        Scenario{"no_port_bind_fix",
                 "bind-vs-no-port",
                 {},
                 2,
                 {"--bind=no-port"},
                 true,
                 0,
                 [](const v1::RunReport& r, auto&) { EXPECT_EQ(r.totals().failed(), 0u); }},
        Scenario{"rst_close",
                 "rst-close",
                 {},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, auto&) {
                   EXPECT_EQ(r.totals().succeeded(), 1600u);
                   EXPECT_EQ(r.agents(0).sources(0).peak_time_wait(), 0u);
                 }},
        Scenario{"server_close",
                 "server-close",
                 {"--protocol=http", "--close=client"},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, std::map<std::string, uint64_t>& target) {
                   EXPECT_EQ(r.totals().succeeded(), 1600u);
                   EXPECT_EQ(r.agents(0).sources(0).peak_time_wait(), 0u);  // it moved
                   EXPECT_GE(Kernel(r, "TW"), 1500);                        // to the server
                   EXPECT_EQ(target["closed_by_server"], 1600u);
                 }},
        Scenario{"pooling",
                 "pooling",
                 {},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, auto&) {
                   EXPECT_EQ(r.totals().attempted(), 16u);
                   EXPECT_EQ(r.totals().requests(), 1600u);
                   EXPECT_EQ(r.totals().failed(), 0u);
                 }},
        Scenario{"listen_backlog_full",
                 "listen-backlog",
                 {"--backlog=4", "--accept-rate=10", "--threads=1"},
                 1,
                 {},
                 true,
                 1,
                 [](const v1::RunReport& r, auto&) {
                   EXPECT_GE(Errors(r, "connect-timeout") + Errors(r, "response-timeout"), 100u);
                   EXPECT_EQ(Errors(r, "ECONNREFUSED"), 0u);  // not what users expect
                   EXPECT_GT(Kernel(r, "ListenOverflows") + Kernel(r, "ListenDrops"), 0);
                   ASSERT_EQ(r.observers_size(), 1);
                   EXPECT_GT(r.observers(0).kernel_counters().at("ListenOverflows"), 0);
                   bool said = false;
                   for (const std::string& o : r.observations()) {
                     said = said || o.find("listen queue overflowed") != std::string::npos;
                   }
                   EXPECT_TRUE(said);
                 }},
        Scenario{"listen_backlog_fix",
                 "listen-backlog",
                 {"--threads=1"},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, auto&) { EXPECT_EQ(r.totals().failed(), 0u); }},
        Scenario{"close_wait_leak",
                 "close-wait-leak",
                 {"--close=never", "--max-leaked=100000"},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, std::map<std::string, uint64_t>& target) {
                   EXPECT_EQ(target["leaked"], r.totals().attempted());
                   // The client's sockets wait in FIN_WAIT2, holding their ports.
                   uint64_t held = 0;
                   for (const v1::SourceReport& s : r.agents(0).sources()) {
                     held += s.peak_ports_in_use();
                   }
                   EXPECT_GE(held, 450u);
                   // The server's sockets wait in CLOSE_WAIT, and the report says why. (The
                   // observer samples once a second: the run's last second may be missing.)
                   ASSERT_EQ(r.observers_size(), 1);
                   EXPECT_GE(r.observers(0).listen(0).peak_close_wait(), 350u);
                   bool said = false;
                   for (const std::string& o : r.observations()) {
                     said = said || o.find("CLOSE_WAIT") != std::string::npos;
                   }
                   EXPECT_TRUE(said);
                 }},
        Scenario{"close_wait_fix",
                 "close-wait-leak",
                 {"--close=client"},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, std::map<std::string, uint64_t>& target) {
                   EXPECT_EQ(target["leaked"], 0u);
                   EXPECT_EQ(target["closed_by_peer"], r.totals().attempted());
                   for (const std::string& o : r.observations()) {
                     EXPECT_EQ(o.find("CLOSE_WAIT"), std::string::npos) << o;
                   }
                 }},
        Scenario{"classic_stress",
                 "classic-stress",
                 {"--delay=10ms..1000ms"},
                 1,
                 {},
                 false,
                 0,
                 [](const v1::RunReport& r, auto&) {
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_NEAR(r.latency().total().p50_ms(), 505, 80);
                   EXPECT_GT(r.achieved_rate(), 2500);
                 }}),
    [](const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; });

}  // namespace
}  // namespace churnlab
