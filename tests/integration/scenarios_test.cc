// Every scenario in scenarios/, run in a network namespace of its own: the phenomenon shows up
// in the report's telemetry and errno counts, and its fix removes it. The kernel is the witness:
// the report's figures are held against the namespace's own counters and socket table (within
// 2%), read by the test itself around the run.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "churnlab/v1/report.pb.h"
#include "gtest/gtest.h"
#include "tests/support/netns_lab.h"
#include "tests/support/source_path.h"

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

// What the test saw itself, beside the report: the target's own counters, and the kernel's
// counters and sockets in the lab's namespace.
struct Witness {
  testing::NetnsLab* lab;
  std::map<std::string, uint64_t> target;  // churnlab-target's counters
  std::map<std::string, int64_t> before;   // kernel counters before the run
  std::map<std::string, int64_t> after;    // and after it
  std::string target_port;

  int64_t Delta(const std::string& key) const {
    auto a = after.find(key);
    auto b = before.find(key);
    return (a == after.end() ? 0 : a->second) - (b == before.end() ? 0 : b->second);
  }
  // Sockets in `state` toward (or, `server_side`, from) the target's port, now.
  uint64_t Sockets(const std::string& state, bool server_side = false) const {
    absl::StatusOr<uint64_t> n =
        lab->Sockets(state, {server_side ? "sport" : "dport", "=", ":" + target_port});
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(0);
  }
};

// An nftables counter, in the lab's namespace, of the SYNs sent to `port` (retransmissions
// aside): the control plane's own connections to the coordinator (the CLI's, retried while the
// agents attach, and the agents' redials), to tell apart from the load's in ActiveOpens. The
// table goes with the namespace.
absl::Status CountSynsTo(testing::NetnsLab& lab, const std::string& port) {
  const std::vector<std::vector<std::string>> commands = {
      {"nft", "add", "table", "inet", "churnlab_witness"},
      {"nft", "add", "chain", "inet", "churnlab_witness", "out",
       "{ type filter hook output priority 0; }"},
      {"nft", "add", "rule", "inet", "churnlab_witness", "out", "tcp", "dport", port, "tcp",
       "flags", "&", "(syn|ack)", "==", "syn", "counter"}};
  for (const std::vector<std::string>& argv : commands) {
    absl::StatusOr<testing::CommandResult> r = lab.Exec(argv);
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) return absl::InternalError(absl::StrCat("nft: ", r->output));
  }
  return absl::OkStatus();
}

// The packets CountSynsTo counted so far.
absl::StatusOr<int64_t> SynsCounted(testing::NetnsLab& lab) {
  absl::StatusOr<testing::CommandResult> r =
      lab.Exec({"nft", "list", "table", "inet", "churnlab_witness"});
  if (!r.ok()) return r.status();
  const size_t at = r->output.find("packets ");
  int64_t packets = 0;
  if (r->exit_code != 0 || at == std::string::npos ||
      !absl::SimpleAtoi(r->output.substr(at + 8, r->output.find(' ', at + 8) - at - 8), &packets)) {
    return absl::InternalError(absl::StrCat("nft list: ", r->output));
  }
  return packets;
}

// A report's figure against the kernel's: within 2%, and a couple of sockets for the control
// plane's own connections (the CLI's and the agent's gRPC streams).
void ExpectKernelAgrees(double reported, double kernel, const std::string& what) {
  EXPECT_NEAR(reported, kernel, std::max(0.02 * kernel, 3.0))
      << what << ": report " << reported << ", kernel " << kernel;
}

std::string ErrorsText(const v1::RunReport& r) {
  std::string out;
  for (const auto& [key, count] : r.errors()) absl::StrAppend(&out, key, " ", count, "; ");
  for (const std::string& o : r.observations()) absl::StrAppend(&out, "\n  ", o);
  return out;
}

bool Says(const v1::RunReport& r, const std::string& text) {
  for (const std::string& o : r.observations()) {
    if (o.find(text) != std::string::npos) return true;
  }
  return false;
}

// What a churn scenario's log shows beside its checks: the totals, and each second's port fill
// and connect() p99 (time inside the call).
void PrintChurn(const v1::RunReport& r, Witness& w) {
  std::printf("succeeded %lu, failed %lu; kernel TWRecycled +%ld\n",
              static_cast<unsigned long>(r.totals().succeeded()),
              static_cast<unsigned long>(r.totals().failed()),
              static_cast<long>(w.Delta("TWRecycled")));
  for (const v1::SeriesPoint& p : r.series()) {
    std::printf("  %.1f s: ports %.0f%% full, connect() p99 %.3f ms\n", p.t_s(),
                100 * p.max_port_fill(), p.connect_call_p99_ms());
  }
}

// The server never closes: the client's ports wait in FIN_WAIT2, the server's sockets in
// CLOSE_WAIT (the observer's census after the drain counts the last ones), and the report
// says why.
void CheckCloseWaitLeak(const v1::RunReport& r, Witness& w) {
  uint64_t held = 0, fin_wait2 = 0;
  for (const v1::SourceReport& s : r.agents(0).sources()) {
    held += s.peak_ports_in_use();
    fin_wait2 += s.peak_fin_wait2();
  }
  ExpectKernelAgrees(held, w.Sockets("fin-wait-2"), "client FIN_WAIT2");
  ExpectKernelAgrees(fin_wait2, w.Sockets("fin-wait-2"), "peak FIN_WAIT2");
  ASSERT_EQ(r.observers_size(), 1);
  ASSERT_GE(r.observers(0).listen_size(), 1);
  ExpectKernelAgrees(r.observers(0).listen(0).peak_close_wait(),
                     w.Sockets("close-wait", /*server_side=*/true), "server CLOSE_WAIT");
  EXPECT_GT(r.observers(0).listen(0).peak_close_wait(), 0u);
  EXPECT_TRUE(Says(r, "CLOSE_WAIT"));
}

// The target's own count: every connection left open (close=never).
void CheckEveryConnectionLeaked(const v1::RunReport& r, Witness& w) {
  EXPECT_EQ(w.target["leaked"], r.totals().attempted());
}

struct Scenario {
  std::string name;                       // the tests' name
  std::string spec;                       // scenarios/<spec>.json
  std::vector<std::string> target_flags;  // how churnlab-target runs
  int target_ports = 1;                   // listening addresses of the target
  std::vector<std::string> run_flags;     // overrides, e.g. the fix
  bool small_port_range = true;
  int exit_code = 0;
  std::function<void(const v1::RunReport&, Witness&)> check;
  std::map<std::string, std::string> sysctls = {};  // set in the lab before the run
  // Checks of the target's own counters, read once it has stopped.
  std::function<void(const v1::RunReport&, Witness&)> check_target = nullptr;
  // Where the target listens: a wildcard (0.0.0.0) is reached at 127.0.0.1, and its observer
  // must count the connections all the same.
  std::string listen_ip = "127.0.0.1";
  // Flags of a run made first, with the same spec and target, whose sockets stay (a host that is
  // not clean); none when empty.
  std::vector<std::string> earlier_run = {};
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
  std::vector<std::string> listen(s.target_ports, s.listen_ip + ":0");
  target_flags.push_back("--listen=" + absl::StrJoin(listen, ","));
  absl::StatusOr<testing::TargetProcess> target = (*lab)->StartTarget(target_flags);
  ASSERT_TRUE(target.ok()) << target.status();
  ASSERT_TRUE((*lab)->StartAgent("a1", "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5").ok());
  for (const auto& [key, value] : s.sysctls) ASSERT_TRUE((*lab)->SetSysctl(key, value).ok());

  std::vector<std::string> args = {"--spec=" + testing::SourcePath("/scenarios/") + s.spec +
                                   ".json"};
  args.push_back("--target=" +
                 absl::StrReplaceAll(target->address_list, {{"0.0.0.0:", "127.0.0.1:"}}));
  if (!s.earlier_run.empty()) {
    std::vector<std::string> earlier = args;
    earlier.insert(earlier.end(), s.earlier_run.begin(), s.earlier_run.end());
    v1::RunReport first;
    ASSERT_GE((*lab)->Churnlab("run", earlier, &first), 0) << (*lab)->output();
  }
  args.insert(args.end(), s.run_flags.begin(), s.run_flags.end());
  Witness witness{lab->get()};
  const std::string& coordinator = (*lab)->coordinator();
  ASSERT_TRUE(CountSynsTo(**lab, coordinator.substr(coordinator.rfind(':') + 1)).ok());
  absl::StatusOr<std::map<std::string, int64_t>> before = (*lab)->KernelCounters();
  ASSERT_TRUE(before.ok()) << before.status();
  v1::RunReport report;
  int code = (*lab)->Churnlab("run", args, &report);
  absl::StatusOr<std::map<std::string, int64_t>> after = (*lab)->KernelCounters();
  ASSERT_TRUE(after.ok()) << after.status();
  absl::StatusOr<int64_t> control = SynsCounted(**lab);
  ASSERT_TRUE(control.ok()) << control.status();
  EXPECT_GE(*control, 1) << "the CLI's own connection to the coordinator was not counted";
  witness.before = *before;
  witness.after = *after;
  witness.target_port = std::to_string(target->address.port());
  ASSERT_EQ(code, s.exit_code) << (*lab)->output() << (*lab)->ProcessLogs();
  // CHURNLAB_SCENARIO_OUTPUT=1 shows what `churnlab run` printed (figures for scenarios/README).
  if (getenv("CHURNLAB_SCENARIO_OUTPUT") != nullptr) std::printf("%s\n", (*lab)->output().c_str());
  EXPECT_EQ(report.totals().attempted(), report.totals().succeeded() + report.totals().failed());
  // Every connect() that got a port sent a SYN: the kernel's ActiveOpens, less the control
  // plane's own connections to the coordinator (nftables' count of their SYNs). Kernel counters
  // in the report are the namespace's over the run, counted once (a control-plane connection
  // within the run adds one to them: the 3 of slack).
  ExpectKernelAgrees(
      report.totals().attempted() - Errors(report, "EADDRNOTAVAIL") - Errors(report, "EADDRINUSE"),
      witness.Delta("ActiveOpens") - *control, "connections that sent a SYN");
  ExpectKernelAgrees(Kernel(report, "ActiveOpens"), witness.Delta("ActiveOpens") - *control,
                     "the report's ActiveOpens");
  s.check(report, witness);
  witness.target = target->StopAndReadCounters();
  if (s.check_target) s.check_target(report, witness);
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
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_GE(Errors(r, "EADDRNOTAVAIL"), 500u);
                   EXPECT_GE(r.agents(0).sources(0).peak_time_wait(), 990u);
                   // TIME_WAIT lasts 60 s: the run's are all still there.
                   ExpectKernelAgrees(r.agents(0).sources(0).peak_time_wait(),
                                      w.Sockets("time-wait"), "client TIME_WAIT");
                   EXPECT_FALSE(Says(r, "held in FIN_WAIT2"));
                   // In the words a Windows user searched for.
                   ASSERT_EQ(r.windows_errors().count("EADDRNOTAVAIL"), 1u);
                   EXPECT_EQ(r.windows_errors().at("EADDRNOTAVAIL").code(), 10048);
                   EXPECT_TRUE(Says(r, "Only one usage of each socket address"));
                 }},
        // Bind mode engine fills 92% of the lab's 1,000-port range with TIME_WAIT: no failure,
        // every port once (the kernel's table agrees), and the report says the engine picked
        // them and what that does to other programs' connect().
        Scenario{"engine_at_high_fill",
                 "engine-at-high-fill",
                 {},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_EQ(r.totals().failed(), 0u) << ErrorsText(r);
                   EXPECT_GE(r.totals().succeeded(), 900u);
                   const v1::SourceReport& source = r.agents(0).sources(0);
                   ExpectKernelAgrees(source.peak_time_wait(), w.Sockets("time-wait"),
                                      "client TIME_WAIT");
                   // Either sentence: past half full, what connect() cost with no search; or,
                   // when a loaded host slowed the calls anyway, that it was not a search.
                   EXPECT_TRUE(Says(r, "bind mode engine picked")) << ErrorsText(r);
                   EXPECT_TRUE(Says(r, "other programs' connect() on the agent's host skipped"))
                       << ErrorsText(r);
                 }},
        // From 90 to 900 new connections/s from one source through the lab's 1,000 ports,
        // tcp_tw_reuse=0: 54 times the budget TIME_WAIT leaves no-port at the peak. Bind mode
        // engine carries every one: its connect() from a port it bound takes that port's
        // TIME_WAIT over (TCP timestamps), and the kernel counts each (TWRecycled); the report
        // says TIME_WAIT does not bind, and gives connect()'s p99 full and at 90/s (under 40%).
        Scenario{"engine_at_high_churn",
                 "engine-at-high-churn",
                 {},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   PrintChurn(r, w);
                   EXPECT_EQ(r.totals().failed(), 0u) << ErrorsText(r);
                   EXPECT_GE(r.totals().succeeded(), 4500u);  // of about 5,220 asked
                   const v1::SourceReport& source = r.agents(0).sources(0);
                   ExpectKernelAgrees(source.peak_time_wait(), w.Sockets("time-wait"),
                                      "client TIME_WAIT");
                   ExpectKernelAgrees(w.Delta("TWRecycled"),
                                      r.totals().succeeded() - w.Sockets("time-wait"),
                                      "TIME_WAITs taken over");
                   EXPECT_EQ(r.tuple_budget().sources(0).limit(), v1::PORT_LIMIT_TAKEN_OVER);
                   // connect()'s p99 full and under 40% full: with no search, or, when a
                   // loaded host slowed the calls anyway, saying it was not a search.
                   EXPECT_TRUE(Says(r, "bind mode engine picked")) << ErrorsText(r);
                   EXPECT_TRUE(Says(r, "under 40% full")) << ErrorsText(r);
                   EXPECT_TRUE(Says(r, absl::StrCat("take over ", Kernel(r, "TWRecycled"),
                                                    " TIME_WAITs (TWRecycled)")))
                       << ErrorsText(r);
                   ExpectKernelAgrees(Kernel(r, "TWRecycled"), w.Delta("TWRecycled"),
                                      "the report's TWRecycled");
                 },
                 {{"net.ipv4.tcp_timestamps", "1"}}},
        // The same under no-port: the 1,000 ports serve once, then EADDRNOTAVAIL.
        Scenario{"no_port_at_high_churn",
                 "engine-at-high-churn",
                 {},
                 1,
                 {"--bind=no-port"},
                 true,
                 1,
                 [](const v1::RunReport& r, Witness& w) {
                   PrintChurn(r, w);
                   EXPECT_EQ(w.Delta("TWRecycled"), 0);
                   EXPECT_LE(r.totals().succeeded(), 1000u);
                   EXPECT_GE(Errors(r, "EADDRNOTAVAIL"), 3500u);
                   EXPECT_EQ(r.tuple_budget().sources(0).limit(), v1::PORT_LIMIT_TIME_WAIT);
                 },
                 {{"net.ipv4.tcp_timestamps", "1"}}},
        Scenario{"time_wait_four_sources",
                 "time-wait",
                 {},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_EQ(r.agents(0).sources_size(), 4);
                   uint64_t peak = 0;
                   for (const v1::SourceReport& s : r.agents(0).sources()) {
                     peak += s.peak_time_wait();
                   }
                   ExpectKernelAgrees(peak, w.Sockets("time-wait"), "client TIME_WAIT");
                 }},
        Scenario{"more_destinations",
                 "more-destinations",
                 {},
                 4,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness&) {
                   EXPECT_EQ(r.totals().attempted() + r.totals().late_starts(), 1600u);
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
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_GE(Errors(r, "EADDRINUSE"), 400u);
                   EXPECT_EQ(r.tuple_budget().sources(0).destinations(), 1u);
                   // What the report says of the ports bind() held: no other connect() on the
                   // host gets one while they sit in TIME_WAIT, whatever its source address.
                   EXPECT_TRUE(Says(r, "no other connect() on the agent's host"));
                   absl::StatusOr<testing::CommandResult> other =
                       w.lab->Exec({testing::BinaryPath("churnlab-churn"),
                                    "--target=127.0.0.1:" + w.target_port, "--rate=100",
                                    "--duration=0.5s", "--progress=false"});
                   ASSERT_TRUE(other.ok()) << other.status();
                   EXPECT_NE(other->output.find("EADDRNOTAVAIL"), std::string::npos)
                       << other->output;
                 }},
        Scenario{"no_port_bind_fix",
                 "bind-vs-no-port",
                 {},
                 2,
                 {"--bind=no-port"},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness&) { EXPECT_EQ(r.totals().failed(), 0u); }},
        Scenario{"rst_close",
                 "rst-close",
                 {},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_EQ(r.totals().succeeded() + r.totals().late_starts(), 1600u);
                   EXPECT_EQ(r.agents(0).sources(0).peak_time_wait(), 0u);
                   EXPECT_EQ(w.Sockets("time-wait"), 0u);
                   ExpectKernelAgrees(r.totals().succeeded(), w.Delta("OutRsts"), "RSTs sent");
                 }},
        Scenario{"server_close",
                 "server-close",
                 {"--protocol=http", "--close=client"},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_EQ(r.totals().succeeded() + r.totals().late_starts(), 1600u);
                   EXPECT_EQ(r.agents(0).sources(0).peak_time_wait(), 0u);  // it moved
                   EXPECT_GE(Kernel(r, "TW"), 1500);                        // to the server
                   ExpectKernelAgrees(r.observers(0).listen(0).peak_time_wait(),
                                      w.Sockets("time-wait", /*server_side=*/true),
                                      "server TIME_WAIT");
                 },
                 {},
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_EQ(w.target["closed_by_server"], r.totals().succeeded());
                 }},
        Scenario{"pooling",
                 "pooling",
                 {},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness&) {
                   EXPECT_EQ(r.totals().attempted(), 16u);
                   EXPECT_EQ(r.totals().requests() + 100 * r.totals().late_starts(), 1600u);
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_DOUBLE_EQ(r.totals().requests_per_connection(), 100);
                 }},
        Scenario{"listen_backlog_full",
                 "listen-backlog",
                 {"--backlog=4", "--accept-rate=10", "--threads=1"},
                 1,
                 {},
                 true,
                 1,
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_GE(Errors(r, "connect-timeout") + Errors(r, "response-timeout"), 100u);
                   EXPECT_EQ(Errors(r, "ECONNREFUSED"), 0u);  // not what users expect
                   ASSERT_EQ(r.observers_size(), 1);
                   const auto& server = r.observers(0).kernel_counters();
                   ExpectKernelAgrees(server.at("ListenDrops"), w.Delta("ListenDrops"),
                                      "ListenDrops");
                   ExpectKernelAgrees(server.at("ListenOverflows"), w.Delta("ListenOverflows"),
                                      "ListenOverflows");
                   // The sentence gives ListenDrops once, not the sum of the two counters.
                   EXPECT_TRUE(Says(r, absl::StrCat("ListenDrops +", server.at("ListenDrops"))));
                   EXPECT_FALSE(Says(
                       r, absl::StrCat("+", server.at("ListenDrops") + server.at("ListenOverflows"),
                                       ")")));
                   // What the clients' kernel did with the dropped SYNs is its own figure: with a
                   // 1 s connect timeout, the 1 s SYN retransmit rarely comes first.
                   ExpectKernelAgrees(Kernel(r, "TCPSynRetrans"), w.Delta("TCPSynRetrans"),
                                      "TCPSynRetrans");
                   EXPECT_TRUE(
                       Says(r, w.Delta("TCPSynRetrans") > 0 ? "retransmitted" : "ran out first"));
                   // Where Windows differs: its server would have refused (10061).
                   EXPECT_TRUE(Says(r, "A Windows server answers a full backlog with RST"));
                   EXPECT_TRUE(Says(r, "10061 WSAECONNREFUSED"));
                 }},
        Scenario{"listen_backlog_fix",
                 "listen-backlog",
                 {"--threads=1"},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_EQ(w.Delta("ListenDrops"), 0);
                 }},
        Scenario{"close_wait_leak",
                 "close-wait-leak",
                 {"--close=never", "--max-leaked=100000"},
                 1,
                 {},
                 true,
                 0,
                 CheckCloseWaitLeak,
                 {},
                 CheckEveryConnectionLeaked},
        // The same with the target on the wildcard address (as the Kubernetes files run it):
        // its observer counts its connections all the same.
        Scenario{"close_wait_leak_wildcard",
                 "close-wait-leak",
                 {"--close=never", "--max-leaked=100000"},
                 1,
                 {},
                 true,
                 0,
                 CheckCloseWaitLeak,
                 {},
                 CheckEveryConnectionLeaked,
                 "0.0.0.0"},
        Scenario{"close_wait_fix",
                 "close-wait-leak",
                 {"--close=client"},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_EQ(w.Sockets("close-wait", /*server_side=*/true), 0u);
                   for (const std::string& o : r.observations()) {
                     EXPECT_EQ(o.find("CLOSE_WAIT"), std::string::npos) << o;
                   }
                 },
                 {},
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_EQ(w.target["leaked"], 0u);
                   EXPECT_EQ(w.target["closed_by_peer"], r.totals().attempted());
                 }},
        // tcp_max_tw_buckets below what the run leaves in TIME_WAIT: the kernel destroys the
        // surplus (TCPTimeWaitOverflow), ports never run out, and the report must not predict
        // EADDRNOTAVAIL.
        Scenario{
            "tw_buckets_overflow",
            "time-wait",
            {},
            1,
            {"--agents=1", "--ips-per-agent=1"},
            true,
            0,
            [](const v1::RunReport& r, Witness& w) {
              EXPECT_EQ(r.totals().failed(), 0u);
              EXPECT_EQ(Errors(r, "EADDRNOTAVAIL"), 0u);
              ExpectKernelAgrees(Kernel(r, "TCPTimeWaitOverflow"), w.Delta("TCPTimeWaitOverflow"),
                                 "TCPTimeWaitOverflow");
              EXPECT_GT(w.Delta("TCPTimeWaitOverflow"), 1000);
              EXPECT_LE(w.Sockets("time-wait"), 300u);
              EXPECT_EQ(r.tuple_budget().sources(0).limit(), v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS);
              EXPECT_EQ(r.tuple_budget().summary().find("expect EADDRNOTAVAIL"), std::string::npos)
                  << r.tuple_budget().summary();
              // The kernel's count, in the report's words.
              std::string said = absl::StrCat("destroyed ", Kernel(r, "TCPTimeWaitOverflow"),
                                              " TIME_WAIT sockets as they closed");
              bool explained = false;
              for (const std::string& o : r.observations())
                explained = explained || o.find(said) != std::string::npos;
              EXPECT_TRUE(explained) << said;
            },
            {{"net.ipv4.tcp_max_tw_buckets", "300"}}},
        // tcp_tw_reuse=1 with timestamps: the kernel takes a TIME_WAIT tuple over only
        // tcp_tw_reuse_delay (1 s) after its last timestamp, so 1,000 ports carry about 1,000/s
        // of the 3,000/s asked; the report predicts that, not "does not bind".
        Scenario{
            "tw_reuse_after_its_delay",
            "time-wait",
            {},
            1,
            {"--agents=1", "--ips-per-agent=1", "--rate=3000", "--duration=4s"},
            true,
            1,
            [](const v1::RunReport& r, Witness& w) {
              const v1::SourceBudget& b = r.tuple_budget().sources(0);
              EXPECT_EQ(b.limit(), v1::PORT_LIMIT_TW_REUSE);
              EXPECT_DOUBLE_EQ(b.hold_s(), 1);
              // The range's 1,000 ports less those bind() took in the namespace (listeners).
              EXPECT_EQ(b.ports(), 1000u - r.agents(0).ports_at_start().bind_taken());
              EXPECT_GE(b.ports(), 990u);
              EXPECT_DOUBLE_EQ(b.budget_rate(), static_cast<double>(b.ports()));
              EXPECT_NE(r.tuple_budget().summary().find("predicted to bind"), std::string::npos)
                  << r.tuple_budget().summary();
              EXPECT_GT(w.Delta("TWRecycled"), 1000);
              EXPECT_GT(Errors(r, "EADDRNOTAVAIL"), 1000u);
              // The first 1,000 fill the range in 1/3 s; each port is free again one
              // reuse delay after its close, so from 1 s on about 1,000/s.
              double predicted = 1000 + b.budget_rate() * (4 - b.hold_s());
              std::printf("succeeded %lu, predicted %.0f; kernel TWRecycled +%ld\n",
                          static_cast<unsigned long>(r.totals().succeeded()), predicted,
                          static_cast<long>(w.Delta("TWRecycled")));
              ExpectKernelAgrees(r.totals().succeeded(), predicted, "succeeded");
              ExpectKernelAgrees(w.Delta("TWRecycled"), predicted - 1000, "TWRecycled");
            },
            {{"net.ipv4.tcp_tw_reuse", "1"}, {"net.ipv4.tcp_timestamps", "1"}}},
        // The same without timestamps: no reuse at all, TIME_WAIT binds in full.
        Scenario{"tw_reuse_without_timestamps",
                 "time-wait",
                 {},
                 1,
                 {"--agents=1", "--ips-per-agent=1", "--rate=3000", "--duration=2s"},
                 true,
                 1,
                 [](const v1::RunReport& r, Witness& w) {
                   const v1::SourceBudget& b = r.tuple_budget().sources(0);
                   EXPECT_EQ(b.limit(), v1::PORT_LIMIT_TIME_WAIT);
                   EXPECT_DOUBLE_EQ(b.hold_s(), 60);
                   bool said = false;
                   for (const std::string& n : r.tuple_budget().notes()) {
                     said = said || n.find("only by its TCP timestamp") != std::string::npos;
                   }
                   EXPECT_TRUE(said);
                   EXPECT_EQ(w.Delta("TWRecycled"), 0);
                   ExpectKernelAgrees(r.totals().succeeded(), 1000, "succeeded, one per port");
                 },
                 {{"net.ipv4.tcp_tw_reuse", "1"}, {"net.ipv4.tcp_timestamps", "0"}}},
        // tcp_max_tw_buckets caps the namespace's TIME_WAIT, not a source's: four sources of
        // 1,000 ports at 200/s each would run out after 5 s alone, but together they reach the
        // 1,500 cap after 1.9 s and the kernel destroys the rest: no failure, no exhaustion
        // predicted.
        Scenario{"tw_buckets_count_the_namespace",
                 "time-wait",
                 {},
                 1,
                 {"--agents=1", "--ips-per-agent=4", "--rate=800", "--duration=7s"},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   ASSERT_EQ(r.tuple_budget().sources_size(), 4);
                   for (const v1::SourceBudget& b : r.tuple_budget().sources()) {
                     EXPECT_EQ(b.limit(), v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS) << b.ip();
                     EXPECT_EQ(b.exhaustion_after_s(), 0) << b.ip();
                   }
                   EXPECT_EQ(r.totals().failed(), 0u);
                   std::printf("TCPTimeWaitOverflow +%ld, TIME_WAIT now %lu\n",
                               static_cast<long>(w.Delta("TCPTimeWaitOverflow")),
                               static_cast<unsigned long>(w.Sockets("time-wait")));
                   EXPECT_GT(w.Delta("TCPTimeWaitOverflow"), 2000);
                   EXPECT_LE(w.Sockets("time-wait"), 1500u);
                   EXPECT_EQ(r.tuple_budget().summary().find("EADDRNOTAVAIL"), std::string::npos)
                       << r.tuple_budget().summary();
                 },
                 {{"net.ipv4.tcp_max_tw_buckets", "1500"}}},
        // TIME_WAIT an earlier run left in the namespace counts against tcp_max_tw_buckets: one
        // source of 1,000 ports at 200/s would run out after 5 s under a cap of 3,000 it alone
        // never reaches, but with 2,400 already there the cap is reached after 3 s and the kernel
        // destroys the rest: the report predicts no exhaustion, and none happens.
        Scenario{"tw_buckets_count_what_was_there",
                 "time-wait",
                 {},
                 1,
                 {"--agents=1", "--source-ips=127.0.0.2", "--rate=200", "--duration=7s"},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   ASSERT_EQ(r.tuple_budget().sources_size(), 1);
                   const v1::SourceBudget& b = r.tuple_budget().sources(0);
                   EXPECT_EQ(b.limit(), v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS);
                   const uint64_t held = r.agents(0).ports_at_start().time_wait();
                   std::printf("TIME_WAIT at the start %lu, TCPTimeWaitOverflow +%ld\n",
                               static_cast<unsigned long>(held),
                               static_cast<long>(w.Delta("TCPTimeWaitOverflow")));
                   EXPECT_GE(held, 2300u);
                   EXPECT_LE(held, 2500u);
                   bool said = false;
                   for (const std::string& n : r.tuple_budget().notes()) {
                     said = said ||
                            n.find("were in TIME_WAIT when the run started") != std::string::npos;
                   }
                   EXPECT_TRUE(said);
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_GT(w.Delta("TCPTimeWaitOverflow"), 500);
                 },
                 {{"net.ipv4.tcp_max_tw_buckets", "3000"}},
                 nullptr,
                 "127.0.0.1",
                 {"--agents=1", "--source-ips=127.0.0.3,127.0.0.4,127.0.0.5", "--rate=600",
                  "--duration=4s"}},
        Scenario{"classic_stress",
                 "classic-stress",
                 {"--delay=10ms..1000ms"},
                 1,
                 {},
                 false,
                 0,
                 [](const v1::RunReport& r, Witness&) {
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_NEAR(r.latency().total().p50_ms(), 505, 80);
                   EXPECT_GT(r.achieved_rate(), 2500);
                 }}),
    [](const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; });

// The field reports' own situations (scenarios/README.md, "In the words of the people who hit
// it"), each with what a Windows client would have said.
INSTANTIATE_TEST_SUITE_P(
    FieldReports, ScenarioTest,
    ::testing::Values(
        // 10,000 parallel clients, each binding IPAddress.Any:0 (bind-any), against the counter
        // server with a random 10-1000 ms delay, the client closing first: bind(0.0.0.0, 0) takes
        // a port per connection from the whole range, and TIME_WAIT keeps each one for 60 s.
        Scenario{"parallel_clients_bind_any",
                 "parallel-clients-bind-any",
                 {"--delay=10ms..1000ms"},
                 1,
                 {},
                 true,
                 1,
                 [](const v1::RunReport& r, Witness& w) {
                   // The first 1,000 connections take every port; after them bind() fails
                   // (the closed model holds back up to 100 ms between failed starts).
                   EXPECT_GE(Errors(r, "EADDRINUSE"), 10u);
                   EXPECT_GE(r.totals().succeeded(), 900u);
                   EXPECT_LE(r.totals().succeeded(), 1000u);
                   EXPECT_GE(r.agents(0).sources(0).peak_ports_in_use(), 950u);
                   ExpectKernelAgrees(r.agents(0).sources(0).peak_time_wait(),
                                      w.Sockets("time-wait"), "client TIME_WAIT");
                   ASSERT_EQ(r.windows_errors().count("EADDRINUSE"), 1u);
                   EXPECT_EQ(r.windows_errors().at("EADDRINUSE").name(), "WSAEADDRINUSE");
                   EXPECT_TRUE(Says(r, "IPAddress.Any:0"));
                   EXPECT_EQ(r.tuple_budget().sources(0).ip(), "auto");
                   EXPECT_EQ(r.tuple_budget().sources(0).destinations(), 1u);
                 }},
        // The same clients in the field report's own close order: its server closed first (the
        // TIME_WAIT lines it showed were the server's). Linux then frees each client port at
        // close, and the server's TIME_WAIT does not stop a new connection from the same port
        // (a SYN with a newer timestamp takes the tuple over): nothing fails.
        Scenario{"parallel_clients_bind_any_server_closes",
                 "parallel-clients-bind-any-server-close",
                 {"--delay=10ms..1000ms", "--close=server"},
                 1,
                 {"--duration=3s"},
                 false,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_EQ(r.totals().failed(), 0u) << ErrorsText(r);
                   EXPECT_GE(r.totals().succeeded(), 10000u);
                   EXPECT_EQ(r.agents(0).sources(0).peak_time_wait(), 0u);
                   EXPECT_EQ(w.Sockets("time-wait"), 0u);
                   // One TIME_WAIT per client tuple at most: the port search cycles through
                   // one parity of 32768-60999 (14,116 ports), and each new SYN takes over the
                   // server's TIME_WAIT on its tuple.
                   uint64_t server = w.Sockets("time-wait", /*server_side=*/true);
                   EXPECT_LE(server, 14116u + 100);
                   // bind() starts its search at a random port each time, so a port can serve
                   // twice before every one has served once: most of them, not all (a run
                   // beside five other suites saw 12,393 of the 14,116, 88%).
                   EXPECT_GE(server, std::min<uint64_t>(r.totals().succeeded(), 14116) * 3 / 4);
                   ExpectKernelAgrees(r.observers(0).listen(0).peak_time_wait(), server,
                                      "the observer's TIME_WAIT");
                   EXPECT_TRUE(Says(r, "at most one per client four-tuple"));
                   EXPECT_EQ(r.tuple_budget().sources(0).limit(),
                             v1::PORT_LIMIT_NO_CLIENT_TIME_WAIT);
                 },
                 {},
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_EQ(w.target["closed_by_server"], r.totals().succeeded());
                 }},
        // A new HttpClient per request: a connection per request, each leaving a TIME_WAIT.
        Scenario{"httpclient_per_request",
                 "httpclient-per-request",
                 {"--protocol=http", "--close=client"},
                 1,
                 {},
                 true,
                 1,
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_GE(Errors(r, "EADDRNOTAVAIL"), 500u);
                   EXPECT_DOUBLE_EQ(r.totals().requests_per_connection(), 1);
                   ExpectKernelAgrees(r.agents(0).sources(0).peak_time_wait(),
                                      w.Sockets("time-wait"), "client TIME_WAIT");
                   EXPECT_EQ(r.windows_errors().at("EADDRNOTAVAIL").code(), 10048);
                 }},
        // One shared HttpClient: the same requests over a few kept-alive connections.
        Scenario{"httpclient_shared",
                 "pooling",
                 {"--protocol=http", "--close=client"},
                 1,
                 {"--protocol=http"},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_DOUBLE_EQ(r.totals().requests_per_connection(), 100);
                   EXPECT_LE(w.Sockets("time-wait"), 16u);
                 }},
        // "Fails near 4,000 connections": ports 1025-5000, what MaxUserPort=5000 leaves.
        Scenario{"legacy_port_range",
                 "legacy-port-range",
                 {},
                 1,
                 {},
                 true,
                 1,
                 [](const v1::RunReport& r, Witness& w) {
                   const v1::SourceReport& s = r.agents(0).sources(0);
                   EXPECT_EQ(s.port_range_size(), 3976u);
                   EXPECT_EQ(r.tuple_budget().sources(0).ports(), 3976u);
                   EXPECT_GE(r.totals().succeeded(), 3900u);
                   EXPECT_LE(r.totals().succeeded(), 3976u);
                   // Then the rest of the run fails (or, while connect() searches the full
                   // range for a free port, is late-skipped).
                   EXPECT_GE(Errors(r, "EADDRNOTAVAIL") + r.totals().late_starts(), 1000u);
                   ExpectKernelAgrees(s.peak_time_wait(), w.Sockets("time-wait"),
                                      "client TIME_WAIT");
                 },
                 {{"net.ipv4.ip_local_port_range", "1025 5000"}}}),
    [](const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; });

// What a new TLS connection costs on top of TCP, with the server as the witness (its own count
// of full and resumed handshakes, read once it stops): every connection a full handshake unless
// the client offers an earlier session, and with HTTPS, a connection per request (seed 001's
// "a new SSL/TLS negotiation is needed") against keep-alive carrying the same requests.
// The report's handshake p99 is printed for scenarios/README.md.
void PrintHandshakes(const v1::RunReport& r) {
  std::printf(
      "tls: full %lu, resumed %lu, handshake p50 %.3f ms, p99 %.3f ms; requests %lu over "
      "%lu connections\n",
      static_cast<unsigned long>(r.totals().tls_full()),
      static_cast<unsigned long>(r.totals().tls_resumed()), r.latency().tls_handshake().p50_ms(),
      r.latency().tls_handshake().p99_ms(), static_cast<unsigned long>(r.totals().requests()),
      static_cast<unsigned long>(r.totals().succeeded()));
}

// The server's count of `kind` ("tls_full", "tls_resumed") against the report's: the same
// handshakes, counted at each end.
void ExpectServerCounted(Witness& w, const char* kind, uint64_t reported) {
  EXPECT_NEAR(static_cast<double>(w.target[kind]), static_cast<double>(reported),
              0.01 * static_cast<double>(reported) + 1)
      << kind << ": the server counted " << w.target[kind] << ", the report " << reported;
}

INSTANTIATE_TEST_SUITE_P(
    Tls, ScenarioTest,
    ::testing::Values(
        Scenario{"tls_full_handshakes",
                 "tls-full-handshakes",
                 {"--protocol=tls"},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness&) {
                   PrintHandshakes(r);
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_EQ(r.totals().tls_full(), r.totals().succeeded());
                   EXPECT_EQ(r.totals().tls_resumed(), 0u);
                   EXPECT_GT(r.latency().tls_handshake().p99_ms(), 0);
                 },
                 {},
                 [](const v1::RunReport& r, Witness& w) {
                   ExpectServerCounted(w, "tls_full", r.totals().tls_full());
                   EXPECT_EQ(w.target["tls_resumed"], 0u);
                 }},
        // The fix at the same rate: each connection offers the last session of its source IP.
        Scenario{"tls_resumed_handshakes",
                 "tls-full-handshakes",
                 {"--protocol=tls"},
                 1,
                 {"--tls-resumption=1"},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness&) {
                   PrintHandshakes(r);
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_EQ(r.totals().tls_full() + r.totals().tls_resumed(),
                             r.totals().succeeded());
                   // The first of each source IP is full, and those that overlap it.
                   EXPECT_GE(r.totals().tls_resumed(), r.totals().succeeded() * 9 / 10);
                 },
                 {},
                 [](const v1::RunReport& r, Witness& w) {
                   ExpectServerCounted(w, "tls_full", r.totals().tls_full());
                   ExpectServerCounted(w, "tls_resumed", r.totals().tls_resumed());
                 }},
        // HTTPS with a connection per request: a full handshake and a TIME_WAIT per request.
        Scenario{"https_connection_per_request",
                 "https-close-per-request",
                 {"--protocol=https", "--close=client"},
                 1,
                 {},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   PrintHandshakes(r);
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_EQ(r.totals().requests(), r.totals().succeeded());
                   EXPECT_EQ(r.totals().tls_full(), r.totals().succeeded());
                   uint64_t time_wait = 0;
                   for (const v1::SourceReport& s : r.agents(0).sources()) {
                     time_wait += s.peak_time_wait();
                   }
                   ExpectKernelAgrees(time_wait, w.Sockets("time-wait"), "client TIME_WAIT");
                   // A TIME_WAIT per request, at one end or the other: TLS's close_notify
                   // makes the server close too, racing the client's FIN (a few close at once,
                   // or end in a reset, and leave none).
                   const uint64_t server = w.Sockets("time-wait", /*server_side=*/true);
                   std::printf("TIME_WAIT: client %lu, server %lu\n",
                               static_cast<unsigned long>(time_wait),
                               static_cast<unsigned long>(server));
                   EXPECT_GE(time_wait + server, r.totals().succeeded() * 9 / 10);
                 },
                 {},
                 [](const v1::RunReport& r, Witness& w) {
                   ExpectServerCounted(w, "tls_full", r.totals().tls_full());
                 }},
        // The same 200 requests/s kept alive, 100 a connection: 2 connections/s, 2 handshakes/s,
        // and a hundredth of the TIME_WAIT.
        Scenario{"https_keep_alive",
                 "https-close-per-request",
                 {"--protocol=https", "--close=client"},
                 1,
                 {"--requests-per-connection=100", "--rate=2"},
                 true,
                 0,
                 [](const v1::RunReport& r, Witness& w) {
                   PrintHandshakes(r);
                   EXPECT_EQ(r.totals().failed(), 0u);
                   EXPECT_EQ(r.totals().requests(), 100 * r.totals().succeeded());
                   EXPECT_GE(r.totals().requests(), 700u);
                   EXPECT_EQ(r.totals().tls_full(), r.totals().succeeded());
                   EXPECT_LE(w.Sockets("time-wait") + w.Sockets("time-wait", true),
                             r.totals().succeeded() + 2);
                 },
                 {},
                 [](const v1::RunReport& r, Witness& w) {
                   ExpectServerCounted(w, "tls_full", r.totals().tls_full());
                 }}),
    [](const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; });

// Connections held with the target on the agents' kernel (it observes, with the same boot id):
// each costs that kernel 2 fds, so the fd bound is fs.file-max / 2, and the report says why.
TEST(ConcurrencyScenarioTest, BothEndsOnOneKernelCostTwoFdsAConnection) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces (ip netns add)";
  absl::StatusOr<std::unique_ptr<testing::NetnsLab>> lab = testing::NetnsLab::Create("fd", true);
  ASSERT_TRUE(lab.ok()) << lab.status();
  ASSERT_TRUE((*lab)->StartCoordinator().ok());
  absl::StatusOr<testing::TargetProcess> target =
      (*lab)->StartTarget({"--coordinator=" + (*lab)->coordinator(), "--listen=127.0.0.1:0"});
  ASSERT_TRUE(target.ok()) << target.status();
  ASSERT_TRUE((*lab)->StartAgent("a1", "127.0.0.2").ok());
  v1::RunReport report;
  int code = (*lab)->Churnlab("run",
                              {"--target=" + target->address_list, "--rate=200", "--duration=1s",
                               "--hold=2s", "--bind=no-port"},
                              &report);
  ASSERT_EQ(code, 0) << (*lab)->output() << (*lab)->ProcessLogs();
  absl::StatusOr<testing::CommandResult> file_max =
      testing::RunCommand({"cat", "/proc/sys/fs/file-max"});
  ASSERT_TRUE(file_max.ok());
  uint64_t kernel_max = std::stoull(file_max->output);
  ASSERT_GT(report.concurrency().peak_established(), 150u) << (*lab)->output();
  EXPECT_EQ(report.concurrency().fd_bound(), kernel_max / 2);
  EXPECT_NE(report.concurrency().kernel_note().find("2 fds"), std::string::npos)
      << report.concurrency().kernel_note();
}

}  // namespace
}  // namespace churnlab
