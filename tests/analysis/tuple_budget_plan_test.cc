// `churnlab budget`'s math: the reports' budget computation on a host described by its settings.
#include <string>

#include "analysis/tuple_budget.h"
#include "gtest/gtest.h"
#include "tests/analysis/facts.h"

namespace churnlab::analysis {
namespace {

PlanInputs Preset(const char* name, double rate = 0) {
  const HostPreset* p = FindHostPreset(name);
  PlanInputs in;
  if (p == nullptr) {
    ADD_FAILURE() << "no preset " << name;
    return in;
  }
  in.os = p->os;
  in.port_low = p->port_low;
  in.port_high = p->port_high;
  in.time_wait_s = p->time_wait_s;
  in.tw_reuse = p->os == HostOs::kLinux ? 2 : 0;
  in.rate = rate;
  return in;
}

bool Has(const google::protobuf::RepeatedPtrField<std::string>& lines, const std::string& text) {
  for (const std::string& line : lines) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(BudgetPlanTest, LinuxDefaultsSustain470PerSecondAnd1000LastsAbout28Seconds) {
  v1::BudgetPlan plan = PlanBudget(Preset("linux", 1000));
  EXPECT_EQ(plan.per_source().ports(), 28232u);
  EXPECT_DOUBLE_EQ(plan.total_rate(), 28232.0 / 60);
  EXPECT_EQ(plan.per_source().limit(), v1::PORT_LIMIT_TIME_WAIT);
  EXPECT_DOUBLE_EQ(plan.exhaustion_after_s(), 28.232);
  EXPECT_EQ(plan.connections_until_exhaustion(), 28232u);
  EXPECT_EQ(plan.time_wait_side(), v1::TIME_WAIT_SIDE_CLIENT);
  EXPECT_EQ(plan.time_wait_sockets(), 28232u);  // every port, once they have run out
  EXPECT_EQ(plan.linux_error(), "EADDRNOTAVAIL");
  EXPECT_EQ(plan.windows_error().code(), 10048);
  EXPECT_NE(plan.summary().find("run out after about 28.2 s"), std::string::npos) << plan.summary();
  EXPECT_NE(plan.summary().find("10048 WSAEADDRINUSE"), std::string::npos) << plan.summary();
  EXPECT_TRUE(Has(plan.notes(), "fixed at compile time"));
  EXPECT_TRUE(Has(plan.notes(), "tcp_tw_reuse=2"));
}

// Where the kernel's port search would slow connect() (half a source's tuples or more in use),
// the plan names --bind=engine; under bind mode engine it says what that mode does instead.
TEST(BudgetPlanTest, AFillingRangeNamesBindModeEngine) {
  auto note = [](const v1::BudgetPlan& plan, const std::string& text) {
    for (const std::string& n : plan.notes()) {
      if (n.find(text) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_FALSE(note(PlanBudget(Preset("linux", 100)), "--bind=engine"));  // a fifth full
  v1::BudgetPlan filling = PlanBudget(Preset("linux", 400));
  EXPECT_TRUE(note(filling, "--bind=engine picks each port in the engine"))
      << filling.DebugString();
  PlanInputs engine = Preset("linux", 400);
  engine.bind = BindMode::kEngine;
  v1::BudgetPlan picked = PlanBudget(engine);
  EXPECT_TRUE(note(picked, "bind mode engine: each destination has every port again"));
  EXPECT_EQ(picked.per_source().limit(), v1::PORT_LIMIT_TIME_WAIT);  // timestamps unknown
  // A remote server's timestamps are its own choice: the plan says which lever that is, at the
  // rate a server with them gives, and counts it when told (--server-timestamps).
  double server_factor = 0;
  for (const v1::BudgetLever& l : picked.levers()) {
    if (l.change() == "a server with TCP timestamps") server_factor = l.factor();
  }
  EXPECT_DOUBLE_EQ(server_factor, 60 / 0.2) << picked.DebugString();
  PlanInputs told = engine;
  told.server_timestamps = true;
  v1::BudgetPlan server = PlanBudget(told);
  EXPECT_EQ(server.per_source().limit(), v1::PORT_LIMIT_TAKEN_OVER);
  EXPECT_DOUBLE_EQ(server.total_rate(), 28232 / 0.2);
  EXPECT_TRUE(server.server_timestamps());
  told.timestamps = 0;  // the client's own off: nothing to take over by
  EXPECT_EQ(PlanBudget(told).per_source().limit(), v1::PORT_LIMIT_TIME_WAIT);
  // ... and then the lever is timestamps on both ends, for a remote server too.
  PlanInputs remote_off = engine;
  remote_off.timestamps = 0;
  double both_factor = 0;
  const v1::BudgetPlan remote_plan = PlanBudget(remote_off);
  for (const v1::BudgetLever& l : remote_plan.levers()) {
    if (l.change() == "tcp_timestamps=1") both_factor = l.factor();
  }
  EXPECT_DOUBLE_EQ(both_factor, 60 / 0.2);
  // Loopback with tcp_timestamps on: its connect() takes each TIME_WAIT over a retransmission
  // timeout (0.2 s) after the close: 28,232 ports sustain 141,160/s, not 471/s.
  engine.loopback = true;
  engine.timestamps = 1;
  engine.rate = 100000;
  v1::BudgetPlan taken = PlanBudget(engine);
  EXPECT_EQ(taken.per_source().limit(), v1::PORT_LIMIT_TAKEN_OVER);
  EXPECT_DOUBLE_EQ(taken.total_rate(), 28232 / 0.2);
  EXPECT_EQ(taken.exhaustion_after_s(), 0);
  EXPECT_NE(taken.summary().find("0.2 s of bind mode engine's wait to take a TIME_WAIT over"),
            std::string::npos)
      << taken.summary();
  // Without timestamps the lever is timestamps, not tcp_tw_reuse (which a bound port ignores).
  engine.timestamps = 0;
  v1::BudgetPlan off = PlanBudget(engine);
  EXPECT_EQ(off.per_source().limit(), v1::PORT_LIMIT_TIME_WAIT);
  double timestamps_factor = 0;
  for (const v1::BudgetLever& l : off.levers()) {
    EXPECT_EQ(l.change().find("tcp_tw_reuse"), std::string::npos) << l.change();
    if (l.change() == "tcp_timestamps=1") timestamps_factor = l.factor();
  }
  EXPECT_DOUBLE_EQ(timestamps_factor, 60 / 0.2) << off.DebugString();
}

TEST(BudgetPlanTest, WindowsPresetsAndRegistryValues) {
  v1::BudgetPlan windows = PlanBudget(Preset("windows"));
  EXPECT_EQ(windows.per_source().ports(), 16384u);
  EXPECT_DOUBLE_EQ(windows.total_rate(), 16384.0 / 240);
  EXPECT_EQ(windows.os(), v1::HOST_OS_WINDOWS);
  EXPECT_FALSE(Has(windows.notes(), "fixed at compile time"));

  // TcpTimedWaitDelay=30: eight times the budget of 240 s.
  PlanInputs delay = Preset("windows");
  delay.time_wait_s = 30;
  EXPECT_DOUBLE_EQ(PlanBudget(delay).total_rate(), 8 * windows.total_rate());

  // "Fails near 4,000 connections": MaxUserPort 5000 leaves ports 1025-5000.
  v1::BudgetPlan legacy = PlanBudget(Preset("windows-legacy", 100));
  EXPECT_EQ(legacy.per_source().ports(), 3976u);
  EXPECT_EQ(legacy.connections_until_exhaustion(), 3976u);
  EXPECT_DOUBLE_EQ(legacy.exhaustion_after_s(), 39.76);
  EXPECT_TRUE(Has(legacy.notes(), "10055 WSAENOBUFS"));
  EXPECT_TRUE(Has(legacy.notes(), "KB 196271"));
}

TEST(BudgetPlanTest, SourcesAndDestinationsMultiplyUnlessBindReservesThePort) {
  PlanInputs in = Preset("linux");
  in.port_low = 40000;
  in.port_high = 40999;
  in.sources = 4;
  in.destinations = 3;
  EXPECT_DOUBLE_EQ(PlanBudget(in).total_rate(), 4 * 3 * 1000.0 / 60);
  in.bind = BindMode::kBind;
  v1::BudgetPlan bind = PlanBudget(in);
  EXPECT_DOUBLE_EQ(bind.total_rate(), 4 * 1000.0 / 60);
  EXPECT_EQ(bind.per_source().destinations(), 1u);
  EXPECT_EQ(bind.linux_error(), "EADDRINUSE");
  EXPECT_EQ(bind.windows_error().code(), 10048);
  EXPECT_TRUE(Has(bind.notes(), "bind(ip, 0) reserves each port for every destination"));
  // The wildcard (IPAddress.Any:0) takes each port on every address as well: one source, one
  // destination, and tcp_tw_reuse does not shorten what a bound port waits out.
  in.bind = BindMode::kBindAny;
  in.tw_reuse = 1;
  v1::BudgetPlan any = PlanBudget(in);
  EXPECT_DOUBLE_EQ(any.total_rate(), 1000.0 / 60);
  EXPECT_EQ(any.per_source().limit(), v1::PORT_LIMIT_TIME_WAIT);
  EXPECT_EQ(any.sources(), 1u);
  EXPECT_EQ(any.linux_error(), "EADDRINUSE");
  EXPECT_TRUE(Has(bind.notes(), "IPAddress.Any:0") || Has(any.notes(), "IPAddress.Any:0"));
  EXPECT_TRUE(Has(any.notes(), "4 source IPs and 3 destinations count as one"));
}

TEST(BudgetPlanTest, ClosePolicyMovesOrRemovesTimeWait) {
  PlanInputs in = Preset("linux", 1000);
  in.close = ClosePolicy::kServerFin;
  v1::BudgetPlan server = PlanBudget(in);
  EXPECT_EQ(server.per_source().limit(), v1::PORT_LIMIT_NO_CLIENT_TIME_WAIT);
  EXPECT_EQ(server.exhaustion_after_s(), 0);
  EXPECT_EQ(server.time_wait_side(), v1::TIME_WAIT_SIDE_SERVER);
  // 60,000 closes, but a SYN takes over the TIME_WAIT of its tuple and the client's port search
  // cycles through one parity of the range (free again at close): 14,116 at most. The
  // parallel_clients_bind_any_server_closes scenario has the kernel's figure.
  EXPECT_EQ(server.time_wait_sockets(), 14116u);
  EXPECT_TRUE(server.levers().empty());
  EXPECT_NE(server.summary().find("server closes first"), std::string::npos) << server.summary();

  in.close = ClosePolicy::kRst;
  v1::BudgetPlan rst = PlanBudget(in);
  EXPECT_EQ(rst.time_wait_side(), v1::TIME_WAIT_SIDE_NONE);
  EXPECT_EQ(rst.time_wait_sockets(), 0u);
}

// The case: 100 ports with tcp_tw_reuse=1 sustain 100/s (one per port per second of
// reuse delay), so 100,000/s runs them out at once; without timestamps, 100 / 60 s.
TEST(BudgetPlanTest, TwReuseSustainsPortsOverTheReuseDelay) {
  PlanInputs in = Preset("linux", 100000);
  in.port_low = 40000;
  in.port_high = 40099;
  in.tw_reuse = 1;
  v1::BudgetPlan plan = PlanBudget(in);
  EXPECT_EQ(plan.per_source().limit(), v1::PORT_LIMIT_TW_REUSE);
  EXPECT_DOUBLE_EQ(plan.total_rate(), 100);
  EXPECT_DOUBLE_EQ(plan.exhaustion_after_s(), 0.001);
  EXPECT_NE(plan.summary().find("1 s after its last timestamp sustain 100 new connections/s"),
            std::string::npos)
      << plan.summary();
  EXPECT_EQ(plan.summary().find("do not run out"), std::string::npos) << plan.summary();
  // Reuse is no lever once it applies; more sources are, still scaled by the reuse delay.
  for (const v1::BudgetLever& lever : plan.levers()) {
    EXPECT_EQ(lever.change().find("tcp_tw_reuse"), std::string::npos) << lever.change();
    EXPECT_FALSE(lever.lifts_limit() && lever.change().find("source") != std::string::npos);
  }

  in.tw_reuse_delay_s = 0.5;
  EXPECT_DOUBLE_EQ(PlanBudget(in).total_rate(), 200);

  in.tw_reuse_delay_s = 1;
  in.timestamps = 0;
  v1::BudgetPlan untimed = PlanBudget(in);
  EXPECT_EQ(untimed.per_source().limit(), v1::PORT_LIMIT_TIME_WAIT);
  EXPECT_NEAR(untimed.total_rate(), 100.0 / 60, 1e-9);
  bool said = false;
  for (const std::string& note : untimed.notes()) {
    said = said || note.find("tcp_timestamps=0") != std::string::npos;
  }
  EXPECT_TRUE(said);
  // The lever that helps then turns both on: x60.
  bool lever = false;
  for (const v1::BudgetLever& l : untimed.levers()) {
    if (l.change() != "tcp_tw_reuse=1, tcp_timestamps=1") continue;
    lever = true;
    EXPECT_FALSE(l.lifts_limit());
    EXPECT_NEAR(l.factor(), 60, 1e-9);
  }
  EXPECT_TRUE(lever);
}

// Seed 002's question: how many connections can one host hold, and what binds first.
TEST(BudgetPlanTest, HoldSaysWhatBindsFirstAndHowManySourceIpsItNeeds) {
  PlanInputs in = Preset("linux");
  in.hold = 1'000'000;
  in.same_host = true;
  in.file_max = 1'228'800;
  in.memory_bytes = uint64_t{16} << 30;
  v1::HoldPlan one = PlanBudget(in).hold();
  EXPECT_EQ(one.tuples(), 28232u);
  EXPECT_EQ(one.fds_per_connection(), 2u);
  EXPECT_EQ(one.fd_bound(), 614'400u);
  EXPECT_DOUBLE_EQ(one.bytes_per_connection(), 10283 + 161);
  EXPECT_EQ(one.memory_bound(), static_cast<uint64_t>((uint64_t{16} << 30) / (10283.0 + 161)));
  EXPECT_EQ(one.capacity(), 28232u);
  EXPECT_EQ(one.limiter(), "four-tuples");
  EXPECT_EQ(one.sources_needed(), 36u);  // ceil(1,000,000 / 28,232)
  EXPECT_NE(one.summary().find("do not fit"), std::string::npos) << one.summary();

  EXPECT_NE(one.summary().find("1000000 needs 36 source IP(s)."), std::string::npos)
      << one.summary();

  in.sources = 40;  // 1,129,280 four-tuples: now the fds bind, 2 a connection
  v1::HoldPlan forty = PlanBudget(in).hold();
  EXPECT_EQ(forty.capacity(), 614'400u);
  EXPECT_EQ(forty.limiter(), "fs.file-max");
  EXPECT_NE(forty.summary().find("but fs.file-max binds before the four-tuples: more source IPs "
                                 "alone do not make it fit"),
            std::string::npos)
      << forty.summary();
  in.same_host = false;  // the other end elsewhere: one fd and one end's memory a connection
  in.memory_bytes = uint64_t{4} << 30;
  v1::HoldPlan apart = PlanBudget(in).hold();
  EXPECT_EQ(apart.fd_bound(), 1'228'800u);
  EXPECT_EQ(apart.limiter(), "memory");
  EXPECT_EQ(apart.capacity(), static_cast<uint64_t>((uint64_t{4} << 30) / (10283.0 / 2 + 161)));
  // Bind mode bind: a port for every destination, so destinations add nothing.
  in.destinations = 4;
  in.bind = BindMode::kBind;
  EXPECT_EQ(PlanBudget(in).hold().tuples(), 40u * 28232);
  // Bind-any: one set of ports for every address, so source IPs are no lever either.
  in.bind = BindMode::kBindAny;
  EXPECT_EQ(PlanBudget(in).hold().tuples(), 28232u);
  EXPECT_NE(PlanBudget(in).hold().summary().find("More source IPs do not raise"),
            std::string::npos);
  EXPECT_FALSE(PlanBudget(Preset("linux")).has_hold());
}

// Out of ports, XP and Server 2003 said 10055 WSAENOBUFS (KB 196271); Vista on, 10048.
TEST(BudgetPlanTest, EachWindowsSaysItsOwnErrorWhenPortsRunOut) {
  EXPECT_EQ(PlanBudget(Preset("windows-legacy", 100)).windows_error().code(), 10055);
  EXPECT_EQ(PlanBudget(Preset("windows", 100)).windows_error().code(), 10048);
}

TEST(BudgetPlanTest, TwReuseOnLinuxOnly) {
  PlanInputs in = Preset("linux", 1000);
  in.tw_reuse = 1;
  EXPECT_EQ(PlanBudget(in).per_source().limit(), v1::PORT_LIMIT_TW_REUSE);
  in.tw_reuse = 2;
  in.loopback = true;
  EXPECT_EQ(PlanBudget(in).per_source().limit(), v1::PORT_LIMIT_TW_REUSE);
  in.loopback = false;
  EXPECT_EQ(PlanBudget(in).per_source().limit(), v1::PORT_LIMIT_TIME_WAIT);
  PlanInputs windows = Preset("windows", 1000);
  windows.tw_reuse = 1;  // no such setting there
  EXPECT_EQ(PlanBudget(windows).per_source().limit(), v1::PORT_LIMIT_TIME_WAIT);
}

TEST(BudgetPlanTest, RequestsPerConnectionMultiplyTheRequestsCarried) {
  PlanInputs in = Preset("windows");
  in.requests_per_connection = 100;
  v1::BudgetPlan plan = PlanBudget(in);
  EXPECT_DOUBLE_EQ(plan.total_request_rate(), 100 * plan.total_rate());
  EXPECT_NE(plan.summary().find("at 100 requests per connection"), std::string::npos);
}

TEST(BudgetPlanTest, LeversLargestFirstEachComputedTheSameWay) {
  v1::BudgetPlan plan = PlanBudget(Preset("linux", 1000));
  ASSERT_GE(plan.levers_size(), 6);
  // What lifts the limit first, the safest of those first; then by how much they multiply:
  // tcp_tw_reuse shortens the hold from 60 s to its 1 s delay, x60, and lifts nothing.
  EXPECT_EQ(plan.levers(0).change(), "server closes first");
  EXPECT_TRUE(plan.levers(0).lifts_limit());
  EXPECT_EQ(plan.levers(1).change(), "close with RST");
  EXPECT_EQ(plan.levers(2).change(), "100 requests per connection");
  EXPECT_DOUBLE_EQ(plan.levers(2).factor(), 100);
  EXPECT_EQ(plan.levers(3).change(), "tcp_tw_reuse=1");
  EXPECT_FALSE(plan.levers(3).lifts_limit());
  EXPECT_DOUBLE_EQ(plan.levers(3).factor(), 60);
  double previous = plan.levers(2).factor();
  for (int i = 3; i < plan.levers_size(); ++i) {
    EXPECT_FALSE(plan.levers(i).lifts_limit());
    EXPECT_LE(plan.levers(i).factor(), previous) << plan.levers(i).change();
    previous = plan.levers(i).factor();
  }
  // 1000/s needs ceil(1000 / 470.5) = 3 source IPs, or 3 destinations.
  bool sources = false;
  for (const v1::BudgetLever& l : plan.levers()) {
    if (l.change() != "3 source IPs") continue;
    sources = true;
    EXPECT_DOUBLE_EQ(l.sustainable_rate(), 3 * 28232.0 / 60);
    EXPECT_NE(l.why().find("(enough for 1000 requests/s)"), std::string::npos) << l.why();
  }
  EXPECT_TRUE(sources);
  EXPECT_TRUE(Has(plan.notes(), "At 1000/s the client holds about 28232 sockets in TIME_WAIT"));
}

TEST(BudgetPlanTest, WindowsLeversAreItsRegistryValues) {
  v1::BudgetPlan plan = PlanBudget(Preset("windows-legacy", 100));
  bool delay = false;
  bool max_user_port = false;
  for (const v1::BudgetLever& l : plan.levers()) {
    EXPECT_NE(l.change(), "tcp_tw_reuse=1");
    if (l.change() == "TcpTimedWaitDelay=30") {
      delay = true;
      EXPECT_DOUBLE_EQ(l.factor(), 8);
    }
    if (l.change() == "ports 1025-65534") {
      max_user_port = true;
      EXPECT_NE(l.why().find("MaxUserPort = 65534"), std::string::npos);
    }
  }
  EXPECT_TRUE(delay);
  EXPECT_TRUE(max_user_port);
}

// One implementation: the planner's source is the report's source for the same facts.
TEST(BudgetPlanTest, AgreesWithTheReportsBudget) {
  testing::Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 300);  // ports 40000-40999, tcp_tw_reuse 0
  v1::TupleBudget report =
      ComputeTupleBudget(testing::Spec({"10.0.0.1:80", "10.0.0.1:81"}, 300), fleet.facts());
  PlanInputs in;
  in.port_low = 40000;
  in.port_high = 40999;
  in.destinations = 2;
  in.tw_reuse = 0;
  in.rate = 300;
  v1::BudgetPlan plan = PlanBudget(in);
  const v1::SourceBudget& a = report.sources(0);
  const v1::SourceBudget& b = plan.per_source();
  EXPECT_EQ(a.ports(), b.ports());
  EXPECT_EQ(a.destinations(), b.destinations());
  EXPECT_DOUBLE_EQ(a.budget_rate(), b.budget_rate());
  EXPECT_DOUBLE_EQ(a.exhaustion_after_s(), b.exhaustion_after_s());
  EXPECT_EQ(a.limit(), b.limit());
  EXPECT_DOUBLE_EQ(report.total_rate(), plan.total_rate());
}

}  // namespace
}  // namespace churnlab::analysis
