#include "analysis/tuple_budget.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/analysis/facts.h"

namespace churnlab::analysis {
namespace {

using testing::Fleet;
using testing::Spec;

bool Has(const v1::TupleBudget& b, const std::string& text) {
  for (const std::string& note : b.notes()) {
    if (note.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(TupleBudgetTest, PortsTimesDestinationsOverTimeWaitPerSource) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1", "10.0.1.2"}, 200);
  fleet.Add("a2", {"10.0.2.1"}, 100);
  v1::TupleBudget budget =
      ComputeTupleBudget(Spec({"10.0.0.1:80", "10.0.0.1:81"}, 300), fleet.facts());
  ASSERT_EQ(budget.sources_size(), 3);
  EXPECT_DOUBLE_EQ(budget.sources(0).budget_rate(), 1000.0 * 2 / 60);
  EXPECT_DOUBLE_EQ(budget.total_rate(), 3 * 1000.0 * 2 / 60);
  EXPECT_DOUBLE_EQ(budget.sources(0).requested_rate(), 100);
  EXPECT_EQ(budget.sources(0).limit(), v1::PORT_LIMIT_TIME_WAIT);
  // 2,000 four-tuples at 100/s: gone after 20 s.
  EXPECT_DOUBLE_EQ(budget.sources(0).exhaustion_after_s(), 20);
  EXPECT_TRUE(budget.notes().empty());
  EXPECT_NE(budget.summary().find("The four-tuple limit is predicted to bind"), std::string::npos)
      << budget.summary();
  EXPECT_NE(budget.summary().find("after about 20 s"), std::string::npos) << budget.summary();
}

TEST(TupleBudgetTest, ANameCountsEveryAddressItResolvedToOnTheAgent) {
  Fleet fleet;
  // a1's answer for api.example had three addresses; a2's has not come yet (one per target).
  fleet.Add("a1", {"10.0.1.1"}, 100);
  fleet.last().destinations = 3;
  fleet.Add("a2", {"10.0.2.1"}, 100);
  v1::TupleBudget budget = ComputeTupleBudget(Spec({"api.example:443"}, 200), fleet.facts());
  ASSERT_EQ(budget.sources_size(), 2);
  EXPECT_EQ(budget.sources(0).destinations(), 3u);
  EXPECT_DOUBLE_EQ(budget.sources(0).budget_rate(), 1000.0 * 3 / 60);
  EXPECT_EQ(budget.sources(1).destinations(), 1u);
  // Under bind, bind() takes a port for every destination: more addresses do not help.
  budget = ComputeTupleBudget(
      Spec({"api.example:443"}, 200, v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_BIND),
      fleet.facts());
  EXPECT_EQ(budget.sources(0).destinations(), 1u);
}

TEST(TupleBudgetTest, ARunThatEndsBeforeThePortsRunOutSaysSo) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 100);
  v1::TupleBudget budget =
      ComputeTupleBudget(Spec({"10.0.0.1:80"}, 100, v1::CLOSE_POLICY_CLIENT_FIN,
                              v1::BIND_MODE_NO_PORT, /*duration_s=*/5),
                         fleet.facts());
  EXPECT_DOUBLE_EQ(budget.sources(0).exhaustion_after_s(), 10);
  EXPECT_NE(budget.summary().find("but this 5 s run ends first"), std::string::npos)
      << budget.summary();
}

TEST(TupleBudgetTest, WithinBudgetPortsAreNotTheLimit) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 10);
  v1::TupleBudget budget = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 10), fleet.facts());
  EXPECT_EQ(budget.sources(0).exhaustion_after_s(), 0);
  EXPECT_NE(budget.summary().find("ports are not the limit"), std::string::npos);
}

TEST(TupleBudgetTest, BindModeBindReservesThePortForEveryDestination) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 200);
  v1::TupleBudget bind = ComputeTupleBudget(
      Spec({"10.0.0.1:80", "10.0.0.1:81"}, 200, v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_BIND),
      fleet.facts());
  EXPECT_EQ(bind.sources(0).destinations(), 1u);
  EXPECT_TRUE(Has(bind, "bind mode bind"));
}

// Bind mode engine: a connect() from a port the engine bound takes a TIME_WAIT over where the
// connection had TCP timestamps, tcp_tw_reuse or not, after a retransmission timeout (0.2 s):
// 1,000 ports sustain 5,000/s (bench/time_wait_takeover.sh measured 4,905/s). Known ahead on
// loopback connections (both ends this kernel); toward another host the budget counts the whole
// TIME_WAIT and says why.
TEST(TupleBudgetTest, BindModeEngineTakesItsTimeWaitsOverByTimestamps) {
  auto engine = [](const char* target) {
    return Spec({target}, 5000, v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_ENGINE);
  };
  for (const char* reuse : {"0", "1"}) {
    Fleet fleet;
    fleet.Add("a1", {"127.0.0.2"}, 5000,
              {{"net.ipv4.tcp_tw_reuse", reuse}, {"net.ipv4.tcp_timestamps", "1"}});
    v1::TupleBudget b = ComputeTupleBudget(engine("127.0.0.1:80"), fleet.facts());
    EXPECT_EQ(b.sources(0).limit(), v1::PORT_LIMIT_TAKEN_OVER) << reuse;
    EXPECT_DOUBLE_EQ(b.sources(0).hold_s(), 0.2) << reuse;
    EXPECT_DOUBLE_EQ(b.sources(0).budget_rate(), 5000) << reuse;
    EXPECT_EQ(b.sources(0).exhaustion_after_s(), 0) << reuse;
    EXPECT_NE(b.summary().find("0.2 s of bind mode engine's wait to take a TIME_WAIT over) is "
                               "above the requested 5000/s"),
              std::string::npos)
        << b.summary();
  }
  // Past it, the engine runs out too: 1,000 ports at 10,000/s after 0.1 s.
  Fleet faster;
  faster.Add("a1", {"127.0.0.2"}, 10000, {{"net.ipv4.tcp_timestamps", "1"}});
  v1::TupleBudget past = ComputeTupleBudget(
      Spec({"127.0.0.1:80"}, 10000, v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_ENGINE),
      faster.facts());
  EXPECT_DOUBLE_EQ(past.sources(0).exhaustion_after_s(), 0.1);
  EXPECT_NE(past.summary().find("predicted to bind"), std::string::npos) << past.summary();

  Fleet off;
  off.Add("a1", {"127.0.0.2"}, 5000,
          {{"net.ipv4.tcp_tw_reuse", "1"}, {"net.ipv4.tcp_timestamps", "0"}});
  v1::TupleBudget without = ComputeTupleBudget(engine("127.0.0.1:80"), off.facts());
  EXPECT_EQ(without.sources(0).limit(), v1::PORT_LIMIT_TIME_WAIT);
  EXPECT_DOUBLE_EQ(without.sources(0).hold_s(), 60);
  EXPECT_GT(without.sources(0).exhaustion_after_s(), 0);
  EXPECT_NE(without.summary().find("predicted to bind"), std::string::npos) << without.summary();
  EXPECT_TRUE(Has(without, "tcp_timestamps=0 on a1-host: bind mode engine can take no TIME_WAIT"));

  Fleet remote;
  remote.Add("a1", {"10.0.1.1"}, 5000,
             {{"net.ipv4.tcp_tw_reuse", "1"}, {"net.ipv4.tcp_timestamps", "1"}});
  v1::TupleBudget far = ComputeTupleBudget(engine("10.0.0.1:80"), remote.facts());
  EXPECT_EQ(far.sources(0).limit(), v1::PORT_LIMIT_TIME_WAIT);  // not tcp_tw_reuse's delay
  EXPECT_DOUBLE_EQ(far.sources(0).hold_s(), 60);
  EXPECT_TRUE(Has(far, "toward another host: a TIME_WAIT is taken over where the server"));
  EXPECT_FALSE(Has(far, "tcp_tw_reuse=1 on"));
}

// bind(0.0.0.0, 0): one source per agent whatever it offers, one destination, and no reuse (the
// kernel's tcp_tw_reuse acts only where connect() picks the port).
TEST(TupleBudgetTest, BindModeBindAnyTakesThePortOnEveryAddress) {
  Fleet fleet;
  fleet.Add("a1", {}, 200, {{"net.ipv4.tcp_tw_reuse", "1"}, {"net.ipv4.tcp_timestamps", "1"}});
  v1::TupleBudget any =
      ComputeTupleBudget(Spec({"10.0.0.1:80", "10.0.0.1:81"}, 200, v1::CLOSE_POLICY_CLIENT_FIN,
                              v1::BIND_MODE_BIND_ANY),
                         fleet.facts());
  ASSERT_EQ(any.sources_size(), 1);
  EXPECT_EQ(any.sources(0).destinations(), 1u);
  EXPECT_EQ(any.sources(0).limit(), v1::PORT_LIMIT_TIME_WAIT);
  EXPECT_DOUBLE_EQ(any.sources(0).budget_rate(), 1000.0 / 60);
  EXPECT_TRUE(Has(any, "bind mode bind-any"));
  EXPECT_NE(any.summary().find("bind()"), std::string::npos) << any.summary();
}

// Ports the census found taken before the run: a source's own toward the targets leave the
// budget; the range's others (other addresses, other programs) are named, with the listeners.
TEST(TupleBudgetTest, PortsTakenBeforeTheRunLeaveTheBudgetOrAreNamed) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 200);
  fleet.last().taken_at_start["10.0.1.1"] = 400;
  v1::PortsAtStart range;
  range.set_in_use(950);
  range.set_listening(3);
  fleet.last().range_at_start = range;
  v1::TupleBudget b = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 200), fleet.facts());
  ASSERT_EQ(b.sources_size(), 1);
  EXPECT_EQ(b.sources(0).ports(), 600u);
  EXPECT_DOUBLE_EQ(b.sources(0).budget_rate(), 600.0 / 60);
  EXPECT_TRUE(Has(b, "already held 400 ports toward the targets"));
  EXPECT_TRUE(Has(b, "550 ports of a1-host's range were held by other sockets on the host"));
  EXPECT_TRUE(Has(b, "3 by listeners"));
}

// Where the agent asked the kernel which held ports bind() took, those leave every source's
// budget (connect() skips them for every destination), each port once: 100 of 10.0.1.1's own
// 400 were bind()'s, so it keeps 1000 - 400 - (300 - 100); 10.0.1.2 keeps 1000 - 300.
TEST(TupleBudgetTest, PortsBindTookLeaveEverySourcesBudgetOnce) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1", "10.0.1.2"}, 200);
  fleet.last().taken_at_start["10.0.1.1"] = 400;
  fleet.last().bind_taken_at_start["10.0.1.1"] = 100;
  v1::PortsAtStart range;
  range.set_in_use(950);
  range.set_listening(3);
  range.set_bind_taken(300);
  range.set_bind_taken_known(true);
  fleet.last().range_at_start = range;
  v1::TupleBudget b = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 200), fleet.facts());
  ASSERT_EQ(b.sources_size(), 2);
  EXPECT_EQ(b.sources(0).ports(), 1000u - 400 - (300 - 100));
  EXPECT_EQ(b.sources(1).ports(), 1000u - 300);
  EXPECT_TRUE(Has(b, "bind() had taken 300 ports of a1-host's range"));
  EXPECT_TRUE(Has(b, "3 of them listeners'"));
  EXPECT_TRUE(Has(b, "the other 650 ports sockets held there were connect()'s"));
  EXPECT_TRUE(Has(b, "10.0.1.1 (a1) already held 400 ports toward the targets"));
  EXPECT_TRUE(Has(b, "the budget counts the 400 left"));
  EXPECT_TRUE(Has(b, "and bind() took others on its host (below)"));
  EXPECT_FALSE(Has(b, "at most that much lower"));
  // Asked, and bind() took none: no word of a note below that is not there.
  fleet.last().bind_taken_at_start.clear();
  range.set_bind_taken(0);
  fleet.last().range_at_start = range;
  v1::TupleBudget none = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 200), fleet.facts());
  EXPECT_TRUE(Has(none, "10.0.1.1 (a1) already held 400 ports toward the targets"));
  EXPECT_FALSE(Has(none, "bind() took others"));
  EXPECT_FALSE(Has(none, "bind() had taken"));
}

TEST(TupleBudgetTest, RstAndServerCloseLeaveTheClientNoTimeWait) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 200);
  for (v1::ClosePolicy close : {v1::CLOSE_POLICY_RST, v1::CLOSE_POLICY_SERVER_FIN}) {
    v1::TupleBudget b = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 200, close), fleet.facts());
    EXPECT_EQ(b.sources(0).limit(), v1::PORT_LIMIT_NO_CLIENT_TIME_WAIT) << close;
    EXPECT_EQ(b.sources(0).exhaustion_after_s(), 0) << close;
    EXPECT_NE(b.summary().find("does not bind"), std::string::npos) << close;
  }
  EXPECT_TRUE(Has(
      ComputeTupleBudget(Spec({"10.0.0.1:80"}, 200, v1::CLOSE_POLICY_RST), fleet.facts()), "RST"));
}

// tcp_tw_reuse does not remove the limit: the kernel takes a TIME_WAIT tuple over only
// tcp_tw_reuse_delay after its last timestamp, so 1,000 ports sustain 1,000/s, not any rate.
TEST(TupleBudgetTest, TwReuseShortensTheHoldToTheReuseDelay) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 5000,
            {{"net.ipv4.tcp_tw_reuse", "1"}, {"net.ipv4.tcp_timestamps", "1"}});
  v1::TupleBudget b = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 5000), fleet.facts());
  EXPECT_EQ(b.sources(0).limit(), v1::PORT_LIMIT_TW_REUSE);
  EXPECT_DOUBLE_EQ(b.sources(0).hold_s(), 1);
  EXPECT_DOUBLE_EQ(b.sources(0).budget_rate(), 1000);
  // 1,000 tuples at 5,000/s: all taken after 0.2 s, then 1,000/s.
  EXPECT_DOUBLE_EQ(b.sources(0).exhaustion_after_s(), 0.2);
  EXPECT_TRUE(Has(b, "tcp_tw_reuse=1 on a1-host"));
  EXPECT_TRUE(Has(b, "it does not remove the limit"));
  EXPECT_NE(b.summary().find("1 s of tcp_tw_reuse_delay"), std::string::npos) << b.summary();
  EXPECT_NE(b.summary().find("predicted to bind"), std::string::npos) << b.summary();
  EXPECT_NE(b.summary().find("after about 0.2 s"), std::string::npos) << b.summary();

  // Within the reuse budget the ports are not the limit.
  Fleet slower;
  slower.Add("a1", {"10.0.1.1"}, 500,
             {{"net.ipv4.tcp_tw_reuse", "1"}, {"net.ipv4.tcp_timestamps", "1"}});
  v1::TupleBudget within = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 500), slower.facts());
  EXPECT_EQ(within.sources(0).exhaustion_after_s(), 0);
  EXPECT_NE(within.summary().find("not the limit"), std::string::npos) << within.summary();
}

// Since Linux 6.13 the delay is a sysctl, in milliseconds.
TEST(TupleBudgetTest, TheReuseDelayIsReadWhereTheKernelHasIt) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 5000,
            {{"net.ipv4.tcp_tw_reuse", "1"},
             {"net.ipv4.tcp_timestamps", "1"},
             {"net.ipv4.tcp_tw_reuse_delay", "250"}});
  v1::TupleBudget b = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 5000), fleet.facts());
  EXPECT_DOUBLE_EQ(b.sources(0).hold_s(), 0.25);
  EXPECT_DOUBLE_EQ(b.sources(0).budget_rate(), 4000);
}

// Without timestamps the kernel has nothing to judge a TIME_WAIT tuple's age by: no reuse.
TEST(TupleBudgetTest, TwReuseWithoutTimestampsReusesNothing) {
  for (const char* timestamps : {"0", ""}) {
    Fleet fleet;
    std::map<std::string, std::string> sysctls = {{"net.ipv4.tcp_tw_reuse", "1"}};
    if (*timestamps != 0) sysctls["net.ipv4.tcp_timestamps"] = timestamps;
    fleet.Add("a1", {"10.0.1.1"}, 200, sysctls);
    v1::TupleBudget b = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 200), fleet.facts());
    EXPECT_EQ(b.sources(0).limit(), v1::PORT_LIMIT_TIME_WAIT) << timestamps;
    EXPECT_DOUBLE_EQ(b.sources(0).hold_s(), 60) << timestamps;
    EXPECT_TRUE(Has(b, "only by its TCP timestamp")) << timestamps;
  }
}

// 2 is the default of recent kernels: it reuses only loopback connections' tuples.
TEST(TupleBudgetTest, TwReuseTwoAppliesToLoopbackOnly) {
  std::map<std::string, std::string> two = {{"net.ipv4.tcp_tw_reuse", "2"},
                                            {"net.ipv4.tcp_timestamps", "1"}};
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 200, two);
  v1::TupleBudget remote = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 200), fleet.facts());
  EXPECT_EQ(remote.sources(0).limit(), v1::PORT_LIMIT_TIME_WAIT);
  EXPECT_GT(remote.sources(0).exhaustion_after_s(), 0);
  EXPECT_TRUE(Has(remote, "loopback connections only"));

  v1::TupleBudget loopback = ComputeTupleBudget(Spec({"127.0.0.1:80"}, 200), fleet.facts());
  EXPECT_EQ(loopback.sources(0).limit(), v1::PORT_LIMIT_TW_REUSE);

  Fleet local;
  local.Add("a1", {"127.0.0.2"}, 200, two);
  EXPECT_EQ(ComputeTupleBudget(Spec({"10.0.0.1:80"}, 200), local.facts()).sources(0).limit(),
            v1::PORT_LIMIT_TW_REUSE);
}

// ip_local_reserved_ports are never picked by connect(): they leave the budget.
TEST(TupleBudgetTest, ReservedPortsLeaveTheBudget) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 100).set_reserved_ports(100);
  v1::TupleBudget b = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 100), fleet.facts());
  EXPECT_EQ(b.sources(0).ports(), 900u);  // 40000-40999 less the 100 reserved
  // A peer's count past its range leaves no ports, not a wrapped number.
  Fleet odd;
  odd.Add("a1", {"10.0.1.1"}, 100).set_reserved_ports(5000);
  EXPECT_EQ(ComputeTupleBudget(Spec({"10.0.0.1:80"}, 100), odd.facts()).sources(0).ports(), 0u);
  EXPECT_TRUE(Has(b, "100 of a1-host's 1000 ports are in net.ipv4.ip_local_reserved_ports"));
}

TEST(TupleBudgetTest, AnUnreportedTwReuseIsTakenAsOff) {
  Fleet fleet;
  fleet.Add("a1", {"127.0.0.2"}, 200, {});
  v1::TupleBudget b = ComputeTupleBudget(Spec({"127.0.0.1:80"}, 200), fleet.facts());
  EXPECT_EQ(b.sources(0).limit(), v1::PORT_LIMIT_TIME_WAIT);
}

// Fewer TIME_WAIT buckets than four-tuples: the kernel destroys TIME_WAIT sockets early
// (TCPTimeWaitOverflow) and the ports never run out.
TEST(TupleBudgetTest, TwBucketsBelowThePortsMeanNoExhaustion) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 200,
            {{"net.ipv4.tcp_tw_reuse", "0"}, {"net.ipv4.tcp_max_tw_buckets", "500"}});
  v1::TupleBudget b = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 200), fleet.facts());
  EXPECT_EQ(b.sources(0).limit(), v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS);
  EXPECT_EQ(b.sources(0).exhaustion_after_s(), 0);
  EXPECT_TRUE(Has(b,
                  "tcp_max_tw_buckets=500 caps every TIME_WAIT of the network namespace of "
                  "a1-host"));
  EXPECT_TRUE(Has(b, "reached after about 2.5 s"));
  EXPECT_NE(b.summary().find("TCPTimeWaitOverflow"), std::string::npos) << b.summary();
  EXPECT_EQ(b.summary().find("EADDRNOTAVAIL"), std::string::npos) << b.summary();

  // Two destinations: 2,000 four-tuples, still above 1,500 buckets.
  Fleet two;
  two.Add("a1", {"10.0.1.1"}, 200,
          {{"net.ipv4.tcp_tw_reuse", "0"}, {"net.ipv4.tcp_max_tw_buckets", "1500"}});
  EXPECT_EQ(
      ComputeTupleBudget(Spec({"10.0.0.1:80", "10.0.0.1:81"}, 200), two.facts()).sources(0).limit(),
      v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS);
  // The default (262,144 on most hosts) is far above 1,000 ports.
  Fleet many;
  many.Add("a1", {"10.0.1.1"}, 200,
           {{"net.ipv4.tcp_tw_reuse", "0"}, {"net.ipv4.tcp_max_tw_buckets", "262144"}});
  EXPECT_EQ(ComputeTupleBudget(Spec({"10.0.0.1:80"}, 200), many.facts()).sources(0).limit(),
            v1::PORT_LIMIT_TIME_WAIT);
}

// The case: the cap counts the namespace's TIME_WAIT, not one source's. Four sources of
// 1,000 ports at 100/s each run out after 10 s on their own, but in one namespace TIME_WAIT
// reaches 1,500 after 3.75 s and the kernel destroys the rest: no exhaustion (the kernel ran
// 6,000 of 6,000, TIME_WAIT held at 1,499). In four namespaces each reaches it after 15 s.
TEST(TupleBudgetTest, TheTimeWaitCapCountsTheWholeNamespace) {
  std::map<std::string, std::string> capped = {{"net.ipv4.tcp_tw_reuse", "0"},
                                               {"net.ipv4.tcp_max_tw_buckets", "1500"}};
  Fleet one;
  for (int i = 1; i <= 4; ++i) {
    one.Add(absl::StrCat("a", i), {absl::StrCat("10.0.1.", i)}, 100, capped)
        .set_kernel_id("boot-1/net:[4026531840]");
  }
  v1::TupleBudget shared = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 400), one.facts());
  for (const v1::SourceBudget& s : shared.sources()) {
    EXPECT_EQ(s.limit(), v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS) << s.agent();
    EXPECT_EQ(s.exhaustion_after_s(), 0) << s.agent();
  }
  EXPECT_TRUE(Has(shared, "at 400 new connections/s in all it is reached after about 3.8 s"));
  EXPECT_EQ(shared.summary().find("EADDRNOTAVAIL"), std::string::npos) << shared.summary();

  Fleet apart;
  for (int i = 1; i <= 4; ++i) {
    apart.Add(absl::StrCat("a", i), {absl::StrCat("10.0.1.", i)}, 100, capped)
        .set_kernel_id(absl::StrCat("boot-1/net:[", i, "]"));
  }
  v1::TupleBudget separate = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 400), apart.facts());
  for (const v1::SourceBudget& s : separate.sources()) {
    EXPECT_EQ(s.limit(), v1::PORT_LIMIT_TIME_WAIT) << s.agent();
    EXPECT_DOUBLE_EQ(s.exhaustion_after_s(), 10) << s.agent();
  }
}

// The cap bites only where the namespace's TIME_WAIT would pass it: 100/s levels off at 6,000
// sockets, under a cap of 10,000, so the ports' own limit stands. Unless the namespace held
// TIME_WAIT already (other programs, an earlier run: a host not clean): with 8,000 there the cap
// is reached after (10,000 - 8,000) / 100 = 20 s, before the ports run out.
TEST(TupleBudgetTest, ACapAboveTheLevelTimeWaitReachesChangesNothingUnlessItWasHeld) {
  Fleet fleet;
  fleet
      .Add("a1", {"10.0.1.1"}, 100,
           {{"net.ipv4.tcp_tw_reuse", "0"}, {"net.ipv4.tcp_max_tw_buckets", "10000"}})
      .mutable_port_range()
      ->set_high(40000 + 28231);
  v1::TupleBudget b = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 100), fleet.facts());
  EXPECT_EQ(b.sources(0).limit(), v1::PORT_LIMIT_TIME_WAIT);
  EXPECT_FALSE(Has(b, "tcp_max_tw_buckets"));

  v1::PortsAtStart at_start;
  at_start.set_time_wait(8000);
  fleet.last().range_at_start = at_start;
  v1::TupleBudget held = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 100), fleet.facts());
  EXPECT_EQ(held.sources(0).limit(), v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS);
  EXPECT_TRUE(Has(held, "8000 were in TIME_WAIT when the run started"));
  EXPECT_TRUE(Has(held, "reached after about 20 s"));
}

// One source IP offered by two agents on one kernel and namespace has its ports once.
TEST(TupleBudgetTest, AnIpTwoAgentsOfOneNamespaceOfferCountsOnce) {
  Fleet fleet;
  for (const char* name : {"a1", "a2"}) {
    fleet.Add(name, {"10.0.1.1"}, 10).set_kernel_id("boot-1/net:[7]");
  }
  v1::TupleBudget b = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 20), fleet.facts());
  ASSERT_EQ(b.sources_size(), 2);
  EXPECT_NEAR(b.total_rate(), 1000.0 / 60, 1e-9);
  EXPECT_NEAR(b.sources(0).budget_rate(), 1000.0 / 120, 1e-9);
  EXPECT_DOUBLE_EQ(b.sources(0).requested_rate(), 10);
  // 20/s in all on 1,000 ports: gone after 50 s (each alone would have lasted 100 s).
  EXPECT_DOUBLE_EQ(b.sources(0).exhaustion_after_s(), 50);
  EXPECT_TRUE(Has(b, "source IP 10.0.1.1 is offered by agents a1, a2 on one kernel"));

  // On two kernels (or namespaces) the same address is two sources.
  Fleet apart;
  apart.Add("a1", {"10.0.1.1"}, 10).set_kernel_id("boot-1/net:[7]");
  apart.Add("a2", {"10.0.1.1"}, 10).set_kernel_id("boot-2/net:[7]");
  EXPECT_NEAR(ComputeTupleBudget(Spec({"10.0.0.1:80"}, 20), apart.facts()).total_rate(),
              2000.0 / 60, 1e-9);
}

TEST(TupleBudgetTest, NoPortRangeReportedMeansNoSummary) {
  Fleet fleet;
  fleet.Add("a1", {"10.0.1.1"}, 200).clear_port_range();
  v1::TupleBudget b = ComputeTupleBudget(Spec({"10.0.0.1:80"}, 200), fleet.facts());
  EXPECT_EQ(b.sources(0).limit(), v1::PORT_LIMIT_UNSPECIFIED);
  EXPECT_EQ(b.summary(), "");
}

TEST(TupleBudgetTest, BindModeNoneCountsTheKernelsChoiceAsOneSource) {
  Fleet fleet;
  fleet.Add("a1", {}, 200);
  v1::TupleBudget b = ComputeTupleBudget(
      Spec({"10.0.0.1:80"}, 200, v1::CLOSE_POLICY_CLIENT_FIN, v1::BIND_MODE_NONE), fleet.facts());
  ASSERT_EQ(b.sources_size(), 1);
  EXPECT_EQ(b.sources(0).ip(), "auto");
  EXPECT_DOUBLE_EQ(b.sources(0).requested_rate(), 200);
}

}  // namespace
}  // namespace churnlab::analysis
