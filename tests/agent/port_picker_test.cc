// Bind mode engine: the engine's own choice of source ports. The picker takes fresh ports first,
// never an excluded one, a port freed without a TIME_WAIT at once and one with a TIME_WAIT only
// after it, and nothing when every port is taken; a real engine binds only its plan's ports (the
// kernel's socket table is the witness), reuses RST-closed ports at once, and sets aside a port
// another program holds.
#include "agent/port_picker.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "agent/engine.h"
#include "agent/port_plan.h"
#include "gtest/gtest.h"
#include "host/socket_census.h"
#include "host/tcp_socket_table.h"
#include "target/target_server.h"
#include "tests/support/fault_sys_calls.h"

namespace churnlab {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(PortPickerTest, FreshThenFreedAtOnceThenAfterTheirTimeWait) {
  auto excluded = std::make_shared<PortSet>();
  excluded->set(40001);
  PortPicker picker(40000, 40003, excluded, 61 * kSecond);
  EXPECT_EQ(picker.usable(), 3u);
  EXPECT_EQ(picker.Pick(7, 0), 40000);
  EXPECT_EQ(picker.Pick(7, 0), 40002);  // 40001 is excluded
  EXPECT_EQ(picker.Pick(7, 0), 40003);
  EXPECT_EQ(picker.Pick(7, 0), 0);      // all three in use toward destination 7
  EXPECT_EQ(picker.Pick(8, 0), 40000);  // another destination has them all again
  using Reuse = PortPicker::Reuse;
  picker.Release(7, 40002, 10 * kSecond, Reuse::kAfterTimeWait);
  picker.Release(7, 40003, 11 * kSecond, Reuse::kNow);
  EXPECT_EQ(picker.Pick(7, 12 * kSecond), 40003);  // its socket is gone: at once
  EXPECT_EQ(picker.Pick(7, 70 * kSecond), 0);      // 40002's TIME_WAIT: until 71 s
  EXPECT_EQ(picker.Pick(7, 71 * kSecond), 40002);
  // The server closed first: this side's socket lingers in LAST_ACK a moment, not a TIME_WAIT.
  picker.Release(7, 40000, 80 * kSecond, Reuse::kSoon, /*soon_nanos=*/kSecond / 100);
  EXPECT_EQ(picker.Pick(7, 80 * kSecond), 0);
  EXPECT_EQ(picker.Pick(7, 80 * kSecond + kSecond / 100), 40000);
  picker.SetAside(8, 40000, 0);  // refused by the kernel: it waits like a TIME_WAIT
  EXPECT_EQ(picker.Pick(8, 1 * kSecond), 40002);
  EXPECT_EQ(picker.Pick(8, 1 * kSecond), 40003);
  EXPECT_EQ(picker.Pick(8, 1 * kSecond), 0);
}

// Ports due a round trip or so after their close each have their own time: one due sooner is
// not held behind one released before it. A TIME_WAIT to take over says so when picked.
TEST(PortPickerTest, SoonPortsComeBackWhenEachIsDueAndSayWhichAreTakenOver) {
  PortPicker picker(40000, 40001, nullptr, 61 * kSecond);
  EXPECT_EQ(picker.Pick(7, 0), 40000);
  EXPECT_EQ(picker.Pick(7, 0), 40001);
  using Reuse = PortPicker::Reuse;
  picker.Release(7, 40000, 0, Reuse::kTakeOver, /*soon_nanos=*/kSecond / 5);  // an RTO
  picker.Release(7, 40001, 0, Reuse::kSoon, /*soon_nanos=*/kSecond / 1000);   // LAST_ACK
  bool taking_over = true;
  EXPECT_EQ(picker.Pick(7, kSecond / 1000, &taking_over), 40001);
  EXPECT_FALSE(taking_over);
  EXPECT_EQ(picker.Pick(7, kSecond / 10, &taking_over), 0);
  EXPECT_EQ(picker.Pick(7, kSecond / 5, &taking_over), 40000);
  EXPECT_TRUE(taking_over);
}

// Ports in TIME_WAIT when the engine started (an earlier run's) wait until their time toward
// every destination, ahead of any port released since; then they are ports again.
TEST(PortPickerTest, PortsInTimeWaitAtTheStartWaitFromTheStartThenServe) {
  auto time_wait = std::make_shared<PortSet>();
  time_wait->set(40000);
  time_wait->set(40002);
  PortPicker picker(40000, 40003, nullptr, 2 * kSecond, time_wait,
                    /*time_wait_ends_nanos=*/12 * kSecond);
  EXPECT_EQ(picker.usable(), 4u);
  EXPECT_EQ(picker.Pick(7, 10 * kSecond), 40001);
  EXPECT_EQ(picker.Pick(7, 10 * kSecond), 40003);
  EXPECT_EQ(picker.Pick(7, 11 * kSecond), 0);  // 40000 and 40002 until 12 s
  picker.Release(7, 40001, 9 * kSecond, PortPicker::Reuse::kAfterTimeWait);  // until 11 s
  EXPECT_EQ(picker.Pick(7, 11 * kSecond), 40001);  // due before the start's TIME_WAITs
  picker.Release(7, 40001, 11 * kSecond, PortPicker::Reuse::kAfterTimeWait);  // until 13 s
  EXPECT_EQ(picker.Pick(7, 12 * kSecond) + picker.Pick(7, 12 * kSecond), 40000 + 40002);
  EXPECT_EQ(picker.Pick(7, 12 * kSecond), 0);
  EXPECT_EQ(picker.Pick(7, 13 * kSecond), 40001);
  // Another destination, first asking after the wait: they are fresh ports to it by then.
  EXPECT_EQ(picker.Pick(8, 12 * kSecond), 40000);
  EXPECT_EQ(picker.Pick(8, 12 * kSecond), 40001);
}

TEST(PortPickerTest, SlicesAreDisjointAndCoverTheRange) {
  std::set<uint32_t> seen;
  for (int i = 0; i < 7; ++i) {
    auto [low, high] = PortSlice(32768, 60999, i, 7);
    for (uint32_t p = low; p <= high; ++p) EXPECT_TRUE(seen.insert(p).second) << p;
  }
  EXPECT_EQ(seen.size(), 60999u - 32768 + 1);
  EXPECT_EQ(*seen.begin(), 32768u);
  EXPECT_EQ(*seen.rbegin(), 60999u);
  auto [low, high] = PortSlice(40000, 40001, 0, 3);  // more parts than ports: one is empty
  EXPECT_GT(low, high);
}

// A real engine toward a loopback target, bind mode engine with a plan of 50 ports less two. The
// 50 lie outside this host's ephemeral range, so that no socket the kernel gives a port (another
// suite's listener or connection, run beside this one) takes one of them from the plan.
class EnginePortsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
    int ephemeral_low = 0, ephemeral_high = 0;
    ASSERT_TRUE(range >> ephemeral_low >> ephemeral_high);
    low_ = ephemeral_low >= 1024 + 300 ? ephemeral_low - 300 : ephemeral_high + 200;
    ASSERT_LE(low_ + 101, 65535) << "no room for 102 ports outside " << ephemeral_low << "-"
                                 << ephemeral_high;
    TargetParams t;
    t.listen = {*SocketAddress::ParseIpPort("127.0.0.1:0")};
    absl::StatusOr<std::unique_ptr<TargetServer>> target = TargetServer::Create(t);
    ASSERT_TRUE(target.ok()) << target.status();
    target_ = *std::move(target);
    target_->Start();
  }
  EngineParams Params(const std::string& source, int64_t connections) const {
    EngineParams p;
    p.targets = {target_->addresses()[0]};
    p.source_ips = {*SocketAddress::ParseIp(source)};
    p.bind_mode = BindMode::kEngine;
    p.ports.low = low_;
    p.ports.high = low_ + 49;
    auto excluded = std::make_shared<PortSet>();
    excluded->set(low_ + 10);
    excluded->set(low_ + 20);
    p.ports.excluded = excluded;
    p.concurrency = 4;
    p.max_connections = connections;
    p.duration = absl::Seconds(5);
    return p;
  }
  // The local ports of this host's sockets from `source` toward the target, by the kernel.
  std::multiset<int> PortsInTheKernel(const std::string& source) const {
    const int port = target_->addresses()[0].port();
    absl::StatusOr<std::vector<TcpSocketInfo>> sockets = DumpTcpSocketsToPorts(AF_INET, port, port);
    EXPECT_TRUE(sockets.ok()) << sockets.status();
    std::multiset<int> out;
    for (const TcpSocketInfo& s : sockets.value_or(std::vector<TcpSocketInfo>{})) {
      if (s.local.IpString() == source) out.insert(s.local.port());
    }
    return out;
  }
  // `p` run to its end on the real clock; an engine that cannot be made is a failure, and an
  // empty snapshot.
  static EngineSnapshot Run(const EngineParams& p, OsSysCalls& sys = RealSysCalls()) {
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(p, sys);
    if (!engine.ok()) {
      ADD_FAILURE() << engine.status();
      return EngineSnapshot{};
    }
    (*engine)->Start();
    return (*engine)->Wait();
  }
  // The failures of `t`, as "phase/errno x count" (for a failed expectation's message).
  static std::string Failures(const OutcomeCounts& t) {
    std::string out;
    t.ForEachFailure([&out](Phase phase, int code, uint64_t n) {
      absl::StrAppend(&out, " ", OutcomeCodeName(phase, code), " x", n);
    });
    return out;
  }
  // Whether this host's connections carry TCP timestamps (a setting this test did not make).
  static bool HostTimestamps() {
    std::ifstream in("/proc/sys/net/ipv4/tcp_timestamps");
    int value = 0;
    return in >> value && value > 0;
  }
  std::unique_ptr<TargetServer> target_;
  int low_ = 0;  // the first of the plan's ports
};

// Client-fin leaves each port in TIME_WAIT toward the target: 48 connections take the 48 ports,
// each once; a port is taken again only where the kernel takes its TIME_WAIT over (TCP
// timestamps: this host's tcp_timestamps), never refused by connect(), and only the plan's.
TEST_F(EnginePortsTest, PortsComeFromThePlanAndTheirTimeWaitsAreTakenOverByTimestamps) {
  EngineSnapshot s = Run(Params("127.0.0.60", 60));
  // A TIME_WAIT is taken over a retransmission timeout (200 ms or more) after its close, so
  // how many of the 12 after the first 48 find a port depends on this host's pace; each that
  // does not fails in phase bind, none in connect().
  EXPECT_GE(s.Total().succeeded, 48u);
  if (!HostTimestamps()) EXPECT_EQ(s.Total().succeeded, 48u);
  EXPECT_EQ(s.Total().failures_of(Phase::kBind, EADDRNOTAVAIL),
            s.Total().attempted - s.Total().succeeded);
  std::multiset<int> ports = PortsInTheKernel("127.0.0.60");
  EXPECT_EQ(ports.size(), 48u);
  EXPECT_EQ(std::set<int>(ports.begin(), ports.end()).size(), 48u);  // each four-tuple once
  for (int port : ports) {
    EXPECT_TRUE(port >= low_ && port <= low_ + 49 && port != low_ + 10 && port != low_ + 20)
        << port;
  }
}

// An earlier run's TIME_WAITs toward the target: the plan keeps their ports apart from those held
// (excluded for the run), to be taken a whole TIME_WAIT after the start; the next run takes them
// then, with no bind() or connect() refused by the kernel. Before, they were excluded for the
// whole run.
TEST_F(EnginePortsTest, AnEarlierRunsTimeWaitIsWaitedOutThenItsPortsServe) {
  // Ports and a source of its own, new at each run and below the ephemeral range: any other socket
  // on a port (another test's connection, this test's TIME_WAIT a minute ago) would rightly keep
  // it excluded.
  const uint16_t low = static_cast<uint16_t>(20000 + 50 * (getpid() % 100));
  const std::string source = absl::StrCat("127.0.1.", 1 + getpid() % 250);
  auto params = [&](int64_t connections) {
    EngineParams p = Params(source, connections);
    p.ports.low = low;
    p.ports.high = low + 49;
    p.ports.excluded = nullptr;
    return p;
  };
  ASSERT_EQ(Run(params(50)).Total().succeeded, 50u);
  std::multiset<int> held = PortsInTheKernel(source);
  ASSERT_EQ(held.size(), 50u);
  EngineParams next = params(0);
  absl::StatusOr<PortPlan> plan = HostPortPlan(next, TakeRangeUse(low, low + 49));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_NE(plan->time_wait, nullptr);
  EXPECT_EQ(plan->time_wait_left, absl::Seconds(61));
  for (int port : held) {
    EXPECT_TRUE(plan->time_wait->test(port)) << port;
    EXPECT_FALSE(plan->excluded != nullptr && plan->excluded->test(port)) << port;
  }
  EXPECT_EQ(plan->reuse_after, absl::Seconds(61));
  if (!HostTimestamps()) GTEST_SKIP() << "no TCP timestamps here: the four-tuples wait a minute";
  // The first run's sockets were the engine's own, with SO_REUSEADDR: bind() takes their ports
  // at once, and connect() their four-tuples (timestamps) or after their TIME_WAIT. This run
  // waits 2 s, not a minute, to see them taken then and not before.
  next.ports.time_wait = plan->time_wait;
  next.ports.time_wait_left = absl::Seconds(2);
  next.concurrency = 0;
  next.rate = 20;
  next.duration = absl::Seconds(4);
  EngineSnapshot s = Run(next);
  // Until time_wait_left the picker has none (phase bind); then the kernel takes every one.
  EXPECT_GT(s.Total().succeeded, 20u);
  EXPECT_EQ(s.Total().failures_of(Phase::kConnect, EADDRNOTAVAIL), 0u);
  EXPECT_EQ(s.Total().failed(), s.Total().failures_of(Phase::kBind, EADDRNOTAVAIL));
}

// A TIME_WAIT the engine meant to take over that the kernel refuses (our FIN not yet
// acknowledged, or a connection without timestamps): that connection fails in connect()
// (EADDRNOTAVAIL, counted), and its port serves again a second later, not a whole TIME_WAIT.
// Four connections a second through two ports, each taken over 200 ms or more after its close.
TEST_F(EnginePortsTest, ARefusedTakeoverServesAgainInASecond) {
  if (!HostTimestamps()) GTEST_SKIP() << "no TCP timestamps here: nothing is taken over";
  testing::FakeClock unused;
  testing::FaultSysCalls sys{unused};
  sys.real_waits = true;
  sys.refuse_connect_at = 3;  // the third takes the first port's TIME_WAIT over
  EngineParams p = Params("127.0.0.64", 0);
  p.ports.low = low_ + 100;
  p.ports.high = low_ + 101;
  p.ports.excluded = nullptr;
  p.concurrency = 0;
  p.rate = 4;
  p.duration = absl::Seconds(3);
  OutcomeCounts t = Run(p, sys).Total();
  EXPECT_EQ(t.failures_of(Phase::kConnect, EADDRNOTAVAIL), 1u);
  ASSERT_GE(sys.bound_ports.size(), 3u);
  const int refused = sys.bound_ports[2];
  // Set aside for a TIME_WAIT, it would not be bound again in this 3 s run.
  EXPECT_GE(std::count(sys.bound_ports.begin() + 3, sys.bound_ports.end(), refused), 1)
      << "port " << refused << " refused at the third connect() never served again";
  EXPECT_EQ(t.succeeded + 1, t.attempted);
}

// Two entries of the destination table with one address (a name's and an IP literal's) are one
// destination for the ports: 48 ports serve both, and no four-tuple is handed out twice at once
// (the kernel would refuse the second connect() with EADDRNOTAVAIL).
TEST_F(EnginePortsTest, OneAddressIsOneDestinationWhateverItsEntries) {
  EngineParams p = Params("127.0.0.63", 60);
  p.targets.push_back(p.targets.front());
  p.target_names = {"", "target.example"};
  EngineSnapshot s = Run(p);
  EXPECT_GE(s.Total().succeeded, 48u);
  EXPECT_EQ(s.Total().failures_of(Phase::kConnect, EADDRNOTAVAIL), 0u);
  EXPECT_EQ(PortsInTheKernel("127.0.0.63").size(), 48u);
}

// RST leaves no TIME_WAIT: a port is free again at once, so 300 connections fit in 48 ports.
TEST_F(EnginePortsTest, ResetConnectionsFreeTheirPortsAtOnce) {
  EngineParams p = Params("127.0.0.61", 300);
  p.close_policy = ClosePolicy::kRst;
  EngineSnapshot s = Run(p);
  EXPECT_EQ(s.Total().succeeded, 300u) << Failures(s.Total());
  EXPECT_EQ(s.Total().failed(), 0u);
}

// A port another program bound (without SO_REUSEADDR, unknown to the plan): bind() refuses it
// once, that connection fails in phase bind, and the port is set aside, never tried again.
TEST_F(EnginePortsTest, APortAnotherProgramHoldsIsSetAside) {
  int other = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(other, 0);
  sockaddr_in held{};
  held.sin_family = AF_INET;
  held.sin_port = htons(low_);
  inet_pton(AF_INET, "127.0.0.62", &held.sin_addr);
  ASSERT_EQ(bind(other, reinterpret_cast<sockaddr*>(&held), sizeof(held)), 0);
  EngineParams p = Params("127.0.0.62", 40);
  p.concurrency = 1;
  EngineSnapshot s = Run(p);
  close(other);
  EXPECT_EQ(s.Total().failures_of(Phase::kBind, EADDRINUSE), 1u);
  EXPECT_EQ(s.Total().succeeded, 39u);
  EXPECT_EQ(PortsInTheKernel("127.0.0.62").count(low_), 0u);
}

}  // namespace
}  // namespace churnlab
