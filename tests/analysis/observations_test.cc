#include "analysis/observations.h"

#include "analysis/connect_observations.h"
#include "gtest/gtest.h"

namespace churnlab::analysis {
namespace {

// The sentence of `said` containing `text`, or "".
std::string Find(const std::vector<std::string>& said, const std::string& text) {
  for (const std::string& s : said) {
    if (s.find(text) != std::string::npos) return s;
  }
  return "";
}

v1::RunReport Exhausted() {
  v1::RunReport report;
  (*report.mutable_errors())["EADDRNOTAVAIL"] = 600;
  v1::AgentReport* agent = report.add_agents();
  agent->set_name("a1");
  v1::SourceReport* source = agent->add_sources();
  source->set_ip("10.0.1.1");
  source->set_peak_ports_in_use(998);
  source->set_port_range_size(1000);
  source->set_peak_time_wait(990);
  return report;
}

TEST(ObserveTest, NamesPortExhaustionWithTheFullestSource) {
  std::string s = Find(Observe(Exhausted()), "EADDRNOTAVAIL");
  EXPECT_NE(s.find("600 connects failed with EADDRNOTAVAIL"), std::string::npos) << s;
  EXPECT_NE(s.find("10.0.1.1 (a1) peaked at 998 of 1000 ports"), std::string::npos) << s;
  EXPECT_TRUE(Observe(v1::RunReport()).empty());
}

// Seed 002's "B's bind() takes A's ports": a source whose own sockets hold few of its ports,
// yet connect() finds none, lost them to bind() elsewhere on the host; more sources are no cure.
TEST(ObserveTest, TimeWaitOverflowIsExplainedAsTheNamespacesCap) {
  v1::RunReport report;
  EXPECT_EQ(Find(Observe(report), "TCPTimeWaitOverflow"), "");
  (*report.mutable_kernel_counters())["TCPTimeWaitOverflow"] = 4501;
  report.mutable_tuple_budget()->add_sources()->set_limit(v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS);
  std::string said = Find(Observe(report), "TCPTimeWaitOverflow");
  EXPECT_NE(said.find("destroyed 4501 TIME_WAIT sockets"), std::string::npos) << said;
  EXPECT_NE(said.find("every TIME_WAIT socket of the network namespace"), std::string::npos);
  EXPECT_NE(said.find("as the budget predicted"), std::string::npos) << said;

  // A close that leaves the client no TIME_WAIT (server-fin, rst): the overflow was the server
  // side's or another program's, not the sources' ports lasting longer than a budget said.
  report.mutable_tuple_budget()->mutable_sources(0)->set_limit(v1::PORT_LIMIT_NO_CLIENT_TIME_WAIT);
  said = Find(Observe(report), "TCPTimeWaitOverflow");
  EXPECT_NE(said.find("these were the server side's"), std::string::npos) << said;
  EXPECT_EQ(said.find("lasted longer"), std::string::npos) << said;
}

TEST(ObserveTest, LostEngineProcessesAreNamedWithTheirShare) {
  v1::RunReport report;
  v1::AgentReport* agent = report.add_agents();
  agent->set_name("a1");
  agent->set_engine_processes(4);
  EXPECT_EQ(Find(Observe(report), "engine processes"), "");
  agent->set_engine_processes_lost(1);
  std::string said = Find(Observe(report), "engine processes were lost");
  EXPECT_NE(said.find("a1: 1 of its 4 engine processes were lost"), std::string::npos) << said;
  EXPECT_NE(said.find("about 25%"), std::string::npos) << said;
}

TEST(ObserveTest, PortsTakenByBindElsewhereAreNotBlamedOnTheSource) {
  v1::RunReport report = Exhausted();
  report.mutable_agents(0)->mutable_sources(0)->set_peak_ports_in_use(0);
  report.mutable_agents(0)->mutable_sources(0)->set_peak_time_wait(0);
  std::string s = Find(Observe(report), "EADDRNOTAVAIL");
  EXPECT_NE(s.find("taken elsewhere on this host"), std::string::npos) << s;
  EXPECT_NE(s.find("bind() took on any address"), std::string::npos) << s;
  EXPECT_EQ(s.find("More source IPs"), std::string::npos) << s;
  // With the census taken before the run, it says how much of the range was held then.
  report.mutable_agents(0)->mutable_ports_at_start()->set_in_use(990);
  report.mutable_agents(0)->mutable_ports_at_start()->set_listening(2);
  s = Find(Observe(report), "EADDRNOTAVAIL");
  EXPECT_NE(s.find("before the run, sockets on the host held 990 ports of the range, 2 of them "
                   "listeners'; 0 were this source's own"),
            std::string::npos)
      << s;
  // A full source is its own explanation.
  EXPECT_NE(Find(Observe(Exhausted()), "EADDRNOTAVAIL").find("More source IPs"), std::string::npos);
}

// ListenDrops already includes ListenOverflows: 445 each is 445 drops, not 890.
TEST(ObserveTest, AFullListenQueueIsCountedOnceByListenDrops) {
  v1::RunReport report;
  (*report.mutable_errors())["connect-timeout"] = 12;
  v1::ObserverReport* server = report.add_observers();
  (*server->mutable_kernel_counters())["ListenOverflows"] = 445;
  (*server->mutable_kernel_counters())["ListenDrops"] = 445;
  std::string s = Find(Observe(report), "listen queue overflowed");
  ASSERT_FALSE(s.empty());
  EXPECT_NE(s.find("dropped 445 incoming SYNs or handshake ACKs"), std::string::npos) << s;
  EXPECT_NE(s.find("ListenDrops +445, which includes ListenOverflows +445"), std::string::npos)
      << s;
  EXPECT_EQ(s.find("890"), std::string::npos) << s;
  EXPECT_NE(s.find("not \"connection refused\""), std::string::npos) << s;
  EXPECT_NE(s.find("timed out (12 here)"), std::string::npos) << s;
  EXPECT_NE(s.find("connect timeout of 0 s ran out first"), std::string::npos) << s;
  // The server's setting unknown: what =1 would do, and that SYNs are dropped either way.
  EXPECT_NE(s.find("tcp_abort_on_overflow=1 would not change that"), std::string::npos) << s;
}

TEST(ObserveTest, TcpAbortOnOverflowIsDescribedAsTheServerHasIt) {
  v1::RunReport report;
  v1::ObserverReport* server = report.add_observers();
  (*server->mutable_kernel_counters())["ListenDrops"] = 30;
  (*server->mutable_sysctls())["net.ipv4.tcp_abort_on_overflow"] = "1";
  std::string on = Find(Observe(report), "listen queue overflowed");
  EXPECT_NE(on.find("has tcp_abort_on_overflow=1, which resets only connections whose final ACK "
                    "finds the accept queue full"),
            std::string::npos)
      << on;
  EXPECT_NE(on.find("drops SYNs all the same"), std::string::npos) << on;
  EXPECT_EQ(on.find("unless"), std::string::npos) << on;
  EXPECT_EQ(on.find("would not change"), std::string::npos) << on;

  (*server->mutable_sysctls())["net.ipv4.tcp_abort_on_overflow"] = "0";
  std::string off = Find(Observe(report), "listen queue overflowed");
  EXPECT_NE(off.find("tcp_abort_on_overflow=1 (it is 0 on the server) would not change that"),
            std::string::npos)
      << off;
}

TEST(ObserveTest, RefusedMeansNothingListenedNotAFullQueue) {
  v1::RunReport report;
  (*report.mutable_errors())["ECONNREFUSED"] = 5;
  std::string s = Find(Observe(report), "ECONNREFUSED");
  EXPECT_NE(s.find("nothing listened"), std::string::npos) << s;
  EXPECT_NE(s.find("seen as ECONNRESET"), std::string::npos) << s;
}

void AddPoint(v1::RunReport* report, double fill, double p99_ms) {
  v1::SeriesPoint* p = report->add_series();
  p->set_max_port_fill(fill);
  p->set_connect_p99_ms(p99_ms);
}

// The kernel's port search slows from about half full (measured 0.024 ms at 42%, 3.96 ms p50 at
// 54%): a run that never got past 60% still shows it.
TEST(ObserveTest, ConnectSlowdownIsSeenFromHalfFull) {
  v1::RunReport report;
  for (double fill : {0.1, 0.2, 0.3}) AddPoint(&report, fill, 0.05);
  AddPoint(&report, 0.45, 0.5);  // between the two: neither fast nor slow
  AddPoint(&report, 0.54, 4.0);
  AddPoint(&report, 0.58, 6.0);
  std::string s = ObserveConnectSlowdown(report);
  EXPECT_NE(s.find("from a p99 of 0.05 ms"), std::string::npos) << s;
  EXPECT_NE(s.find("to 6.00 ms at 58% full"), std::string::npos) << s;
  EXPECT_FALSE(Find(Observe(report), "connect() slowed").empty());
}

// The slowdown's sentence names the remedy; under bind mode engine, past half full, the report
// says what connect() cost with no port to search for (and says nothing of a search).
TEST(ObserveTest, BindModeEngineIsNamedAsTheRemedyAndReportedWhenUsed) {
  v1::RunReport no_port;
  AddPoint(&no_port, 0.2, 0.05);
  AddPoint(&no_port, 0.9, 9.0);
  EXPECT_NE(ObserveConnectSlowdown(no_port).find("--bind=engine picks each port in the engine"),
            std::string::npos);
  v1::RunReport engine;
  engine.mutable_spec()->set_bind_mode(v1::BIND_MODE_ENGINE);
  for (double fill : {0.2, 0.6, 0.92}) {
    AddPoint(&engine, fill, 0.1);
    engine.mutable_series(engine.series_size() - 1)->set_connect_call_p99_ms(0.02);
  }
  EXPECT_EQ(ObserveConnectSlowdown(engine), "");
  std::string said = Find(Observe(engine), "bind mode engine picked every source port");
  EXPECT_NE(said.find("92% full, connect() took a p99 of 0.020 ms (a median p99 of 0.020 ms "
                      "while it was under 40% full)"),
            std::string::npos)
      << said;
  engine.mutable_series(2)->set_max_port_fill(0.3);
  engine.mutable_series(1)->set_max_port_fill(0.3);
  EXPECT_EQ(ObserveEnginePorts(engine), "");  // never past half full: nothing to say
}

// Bind mode engine's TIME_WAITs: taken over, by the agents' own TWRecycled; or, with none taken
// over and ports run out, why (no TCP timestamps).
TEST(ObserveTest, BindModeEngineSaysWhetherTheKernelTookItsTimeWaitsOver) {
  v1::RunReport report;
  report.mutable_spec()->set_bind_mode(v1::BIND_MODE_ENGINE);
  report.mutable_spec()->set_close_policy(v1::CLOSE_POLICY_CLIENT_FIN);
  report.add_agents()->add_sources()->set_peak_time_wait(998);
  v1::RunReport taken = report;
  (*taken.mutable_kernel_counters())["TWRecycled"] = 4402;
  std::string said = Find(Observe(taken), "take over");
  EXPECT_NE(said.find("take over 4402 TIME_WAITs (TWRecycled)"), std::string::npos) << said;
  v1::RunReport none = report;
  (*none.mutable_errors())["EADDRNOTAVAIL"] = 400;
  said = Find(Observe(none), "took over no TIME_WAIT");
  EXPECT_NE(said.find("had no TCP timestamps"), std::string::npos) << said;
  EXPECT_TRUE(Find(Observe(report), "took over").empty());  // neither: nothing to say
}

TEST(ObserveTest, NoSlowdownWithoutAFastBaselineOrWithoutASlowPhase) {
  v1::RunReport flat;
  for (double fill : {0.1, 0.3, 0.6, 0.9}) AddPoint(&flat, fill, 0.05);
  EXPECT_EQ(ObserveConnectSlowdown(flat), "");
  v1::RunReport no_baseline;
  for (double fill : {0.6, 0.9}) AddPoint(&no_baseline, fill, 5);
  EXPECT_EQ(ObserveConnectSlowdown(no_baseline), "");
}

// A loaded host's first second can show a slow handshake p99 while the range is still empty
// (seen in CI: the rise was then under 5x). The time inside connect() is the port search's own.
TEST(ObserveTest, ConnectSlowdownReadsTheTimeInsideConnect) {
  v1::RunReport report;
  AddPoint(&report, 0.3, 2.0);
  report.mutable_series(0)->set_connect_call_p99_ms(0.02);
  AddPoint(&report, 0.62, 3.0);
  report.mutable_series(1)->set_connect_call_p99_ms(1.5);
  std::string s = ObserveConnectSlowdown(report);
  EXPECT_NE(s.find("from a p99 of 0.02 ms"), std::string::npos) << s;
  EXPECT_NE(s.find("to 1.50 ms at 62% full (time inside the connect() call)"), std::string::npos)
      << s;
}

// A slow interval among the fast ones (noise, or an interval that began under 40% full and
// ended past it) is not the baseline: the fastest is.
TEST(ObserveTest, ConnectSlowdownBaselineIsTheFastestLowFillInterval) {
  v1::RunReport report;
  for (double p99 : {3.0, 0.05, 0.8}) AddPoint(&report, 0.2, p99);
  AddPoint(&report, 0.7, 4.0);
  std::string s = ObserveConnectSlowdown(report);
  EXPECT_NE(s.find("from a p99 of 0.05 ms"), std::string::npos) << s;
}

TEST(ObserveTest, ALostAgentsUnrunShareIsNamed) {
  v1::RunReport report;
  report.mutable_spec()->mutable_duration()->set_seconds(10);
  v1::AgentReport* agent = report.add_agents();
  agent->set_name("b");
  agent->set_lost_after_s(4);
  v1::SourceBudget* s = report.mutable_tuple_budget()->add_sources();
  s->set_agent("b");
  s->set_requested_rate(50);
  std::string said = Find(Observe(report), "b was lost");
  EXPECT_NE(said.find("(50 connections/s) went unrun for the remaining 6.0 s, up to about 300"),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("is in no count"), std::string::npos) << said;
}

// Ports held in FIN_WAIT2 against a server that leaks CLOSE_WAIT are not TIME_WAIT's doing.
TEST(ObserveTest, NamesTheStateThatHeldThePorts) {
  v1::RunReport report = Exhausted();
  v1::SourcePoint* source = report.add_series()->add_agents()->add_sources();
  report.mutable_series(0)->mutable_agents(0)->set_name("a1");
  source->set_ip("10.0.1.1");
  source->set_ports_in_use(998);
  source->mutable_tcp_states()->set_fin_wait2(900);
  source->mutable_tcp_states()->set_time_wait(98);
  std::string s = Find(Observe(report), "EADDRNOTAVAIL");
  EXPECT_NE(s.find("held in FIN_WAIT2, not TIME_WAIT"), std::string::npos) << s;
  EXPECT_EQ(s.find("More source IPs"), std::string::npos) << s;
}

TEST(ObserveTest, LateStartsAndALaggingLoopAreSaid) {
  v1::RunReport report;
  report.mutable_totals()->set_late_starts(5940);
  report.mutable_latency()->mutable_connect()->set_p99_ms(900);
  report.mutable_latency()->mutable_loop_lag()->set_max_ms(850);
  report.mutable_latency()->mutable_loop_lag()->set_p99_ms(400);
  report.mutable_latency()->mutable_connect_call()->set_p99_ms(3.9);
  report.mutable_latency()->mutable_connect_call()->set_max_ms(12);
  std::vector<std::string> said = Observe(report);
  std::string late = Find(said, "scheduled starts were skipped");
  EXPECT_NE(late.find("5940 scheduled starts"), std::string::npos) << late;
  EXPECT_NE(late.find("connect() itself took up to 12.0 ms"), std::string::npos) << late;
  std::string lag = Find(said, "latencies include the engine's own delay");
  EXPECT_NE(lag.find("up to 850 ms"), std::string::npos) << lag;
  // A loop that kept up says nothing.
  report.mutable_totals()->set_late_starts(0);
  report.mutable_latency()->mutable_loop_lag()->set_max_ms(2);
  EXPECT_TRUE(Observe(report).empty());
}

// Why starts were skipped, when connect() was quick: a loop away for half the connect timeout or
// more was stopped or starved; one that was not, and still fell behind, had too few threads.
// Each side of half the timeout, and at it.
TEST(ObserveTest, SkippedStartsAreBlamedOnTheLoopOnlyPastHalfTheConnectTimeout) {
  v1::RunReport report;
  report.mutable_totals()->set_late_starts(100);
  report.mutable_spec()->mutable_connect_timeout()->set_seconds(1);
  report.mutable_latency()->mutable_connect_call()->set_p99_ms(0.2);
  auto why = [&](double lag_max_ms) {
    report.mutable_latency()->mutable_loop_lag()->set_max_ms(lag_max_ms);
    return Find(Observe(report), "scheduled starts were skipped");
  };
  EXPECT_NE(why(850).find("stopped or starved of CPU"), std::string::npos) << why(850);
  EXPECT_NE(why(500).find("stopped or starved of CPU"), std::string::npos) << why(500);
  EXPECT_NE(why(499).find("could not keep up with the rate"), std::string::npos) << why(499);
  EXPECT_NE(why(20).find("could not keep up with the rate"), std::string::npos) << why(20);
}

// The server's TIME_WAIT below the connections closed within 60 s: the clients came back on
// tuples it held, and the report says how; a long run's older TIME_WAIT simply expired.
TEST(ObserveTest, ServerTimeWaitBelowTheClosesIsExplainedOnlyWhenItIsTakenOver) {
  v1::RunReport report;
  report.mutable_totals()->set_succeeded(60000);
  report.set_duration_s(3);
  v1::ObserverReport* o = report.add_observers();
  o->set_name("target");
  o->add_listen()->set_peak_time_wait(14113);
  std::string s = Find(Observe(report), "TIME_WAIT landed on the server");
  EXPECT_NE(s.find("at most one per client four-tuple, fewer than the 60000"), std::string::npos)
      << s;
  report.set_duration_s(600);  // 6,000 closed within any 60 s
  report.mutable_observers(0)->mutable_listen(0)->set_peak_time_wait(5900);
  s = Find(Observe(report), "TIME_WAIT landed on the server");
  EXPECT_EQ(s.find("four-tuple"), std::string::npos) << s;
}

TEST(ObserveTest, EmfileIsExplainedAsTheFdLimit) {
  v1::RunReport report;
  v1::AgentReport* agent = report.add_agents();
  agent->set_name("a1");
  agent->set_fd_limit(20000);
  (*agent->add_sources()->mutable_errors())["EMFILE"] = 1234;
  std::string s = Find(Observe(report), "EMFILE");
  EXPECT_NE(s.find("1234 connections on agent a1 failed with EMFILE"), std::string::npos) << s;
  EXPECT_NE(s.find("fd limit (ulimit -n) is 20000"), std::string::npos) << s;
}

TEST(ObserveTest, BindModeBindWarnsOfPortsHeldForTheWholeHost) {
  v1::RunReport report = Exhausted();
  report.mutable_spec()->set_bind_mode(v1::BIND_MODE_BIND);
  std::string s = Find(Observe(report), "bind mode bind reserved");
  EXPECT_NE(s.find("up to 990 of them sat in TIME_WAIT"), std::string::npos) << s;
  EXPECT_NE(s.find("other programs included"), std::string::npos) << s;
}

}  // namespace
}  // namespace churnlab::analysis
