// The shard's telemetry carries a census of its sources' sockets that is at most a beat old:
// the census runs in the background and is paced by what it costs, not by how long it waited to
// be picked up.
#include "agent/shard_telemetry.h"

#include <arpa/inet.h>
#include <google/protobuf/util/time_util.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proto/message_json.h"
#include "tests/support/fault_sys_calls.h"

namespace churnlab {
namespace {

constexpr char kSource[] = "127.0.0.93";
constexpr int64_t kBeatNanos = 1'000'000'000;

class ShardTelemetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(listener_, 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
    ASSERT_EQ(listen(listener_, 64), 0);
    socklen_t len = sizeof(target_);
    ASSERT_EQ(getsockname(listener_, reinterpret_cast<sockaddr*>(&target_), &len), 0);
  }

  void TearDown() override {
    CloseAll();
    close(listener_);
  }

  SocketAddress Target() const {
    return *SocketAddress::ParseIpPort("127.0.0.1:" + std::to_string(ntohs(target_.sin_port)));
  }

  // n connections from kSource to the listener.
  void Open(int n) {
    for (int i = 0; i < n; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      ASSERT_GE(fd, 0);
      sockaddr_in source{};
      source.sin_family = AF_INET;
      ASSERT_EQ(inet_pton(AF_INET, kSource, &source.sin_addr), 1);
      ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof(source)), 0);
      ASSERT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&target_), sizeof(target_)), 0);
      clients_.push_back(fd);
    }
  }

  // Closes with RST: no TIME_WAIT left behind on the source's side.
  void CloseAll() {
    for (int fd : clients_) {
      linger abort{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
      close(fd);
    }
    clients_.clear();
  }

  // Collects at the clock's time, again and again in real time (the census is a background
  // task), until the source shows `ports` in use; false after `tries` tries 20 ms apart (a busy
  // machine has stretched one census past a second).
  bool SeesPorts(ShardTelemetryCollector& collector, uint64_t ports, int tries = 1000) {
    EngineSnapshot snapshot;
    snapshot.sources.push_back({*SocketAddress::ParseIp(kSource), {}});
    for (int i = 0; i < tries; ++i) {
      v1::ShardTelemetry t = collector.Collect(snapshot, false);
      last_ports_ = t.sources_size() == 1 ? static_cast<int64_t>(t.sources(0).ports_in_use()) : -1;
      if (last_ports_ == static_cast<int64_t>(ports)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  int listener_ = -1;
  sockaddr_in target_{};
  std::vector<int> clients_;
  int64_t last_ports_ = -1;  // what the last Collect said
  testing::FakeClock clock_;
};

TEST_F(ShardTelemetryTest, EveryBeatCarriesACensusTakenAtMostABeatEarlier) {
  Open(5);
  ShardTelemetryCollector collector("r", {Target()}, 28232, clock_);
  // Beat 0 starts a census; it is picked up at beat 1, a whole beat later, as in an agent.
  EngineSnapshot snapshot;
  snapshot.sources.push_back({*SocketAddress::ParseIp(kSource), {}});
  collector.Collect(snapshot, false);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  clock_.Advance(kBeatNanos);
  ASSERT_TRUE(SeesPorts(collector, 5));
  // The connections go; the census started when the first was picked up still saw them, the
  // one after it must not, once the first's cost allows: a beat later for a cheap census (one
  // or two beats in all, not 30 s), more on a host whose many sockets make it dear.
  int64_t beats = (collector.census_gap_nanos() + kBeatNanos - 1) / kBeatNanos + 1;
  // The gap is the census's own doing: 100 times the CPU one costs here (measured by the test,
  // three times over for noise), and never under a beat.
  timespec cpu0{}, cpu1{};
  HostTcpStates states{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
  ASSERT_TRUE(TakeSocketCensus({Target()}, &states).ok());
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
  int64_t cost = (cpu1.tv_sec - cpu0.tv_sec) * 1'000'000'000 + (cpu1.tv_nsec - cpu0.tv_nsec);
  EXPECT_LE(collector.census_gap_nanos(), std::max<int64_t>(950'000'000, 300 * cost));
  CloseAll();
  bool retaken = false;
  for (int64_t beat = 0; beat < beats && !retaken; ++beat) {
    clock_.Advance(kBeatNanos);
    retaken = SeesPorts(collector, 0, beat + 1 < beats ? 150 : 1000);  // the last beat: 20 s
  }
  EXPECT_TRUE(retaken) << "the census was not retaken within " << beats << " beats: it still says "
                       << last_ports_;
}

TEST_F(ShardTelemetryTest, TheFinalTelemetryTakesACensusAtOnce) {
  ShardTelemetryCollector collector("r", {Target()}, 28232, clock_);
  Open(3);
  EngineSnapshot snapshot;
  snapshot.sources.push_back({*SocketAddress::ParseIp(kSource), {}});
  v1::ShardTelemetry t = collector.Collect(snapshot, true);
  ASSERT_EQ(t.sources_size(), 1);
  EXPECT_EQ(t.sources(0).ports_in_use(), 3u);
  EXPECT_EQ(t.sources(0).peak_ports_in_use(), 3u);
  ASSERT_TRUE(t.has_census_age());
  EXPECT_EQ(google::protobuf::util::TimeUtil::DurationToNanoseconds(t.census_age()), 0);
}

// Each message says how old its census is: from the census' start, on the collector's clock.
TEST_F(ShardTelemetryTest, EachMessageSaysHowOldItsCensusIs) {
  ShardTelemetryCollector collector("r", {Target()}, 28232, clock_);
  EngineSnapshot snapshot;
  snapshot.sources.push_back({*SocketAddress::ParseIp(kSource), {}});
  EXPECT_FALSE(collector.Collect(snapshot, false).has_census_age());  // started, not in yet
  clock_.Advance(300'000'000);  // picked up when it is in, not due again for a beat
  // The census runs in the background, in real time: asked again until it is in (a busy machine
  // has stretched one past a second), the clock held still so that its age is known.
  v1::ShardTelemetry t = collector.Collect(snapshot, false);
  for (int i = 0; i < 1000 && !t.has_census_age(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    t = collector.Collect(snapshot, false);
  }
  ASSERT_TRUE(t.has_census_age()) << "no census in 20 s";
  EXPECT_EQ(google::protobuf::util::TimeUtil::DurationToNanoseconds(t.census_age()), 300'000'000);
  clock_.Advance(400'000'000);
  EXPECT_EQ(google::protobuf::util::TimeUtil::DurationToNanoseconds(
                collector.Collect(snapshot, false).census_age()),
            700'000'000);
}

// Every engine phase reaches the wire as the phase of the same word, the one the engine's own
// text output uses.
TEST(SnapshotToTelemetryTest, EveryPhaseKeepsItsWord) {
  EngineSnapshot snapshot;
  snapshot.sources.push_back({*SocketAddress::ParseIp(kSource), {}});
  for (int p = 0; p < kPhaseCount; ++p) {
    snapshot.sources[0].counts.failures.Add(static_cast<Phase>(p), 0, p + 1);
  }
  v1::ShardTelemetry t = SnapshotToTelemetry(snapshot, "r", false);
  ASSERT_EQ(t.sources(0).failures_size(), kPhaseCount);
  for (const v1::FailureCount& f : t.sources(0).failures()) {
    Phase phase = static_cast<Phase>(f.count() - 1);
    EXPECT_EQ(Word(f.phase()), PhaseName(phase));
  }
}

}  // namespace
}  // namespace churnlab
