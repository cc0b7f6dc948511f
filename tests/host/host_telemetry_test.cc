// The host's telemetry on this machine's kernel: counter deltas since a baseline after real
// loopback connections, socket totals, conntrack's peak, and an observer's view of its listener.
#include "host/host_telemetry.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "host/conntrack.h"
#include "host/kernel_counters.h"
#include "proto/tcp_state_counts.h"

namespace churnlab {
namespace {

// A socket closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A listening socket on 127.0.0.1, port chosen by the kernel.
Fd Listen(SocketAddress* bound) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SocketAddress any = *SocketAddress::ParseIpPort("127.0.0.1:0");
  if (fd.get() < 0 || bind(fd.get(), any.sockaddr_ptr(), any.length()) != 0 ||
      listen(fd.get(), 16) != 0) {
    return Fd();
  }
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&storage), &len);
  *bound = *SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&storage), len);
  return fd;
}

// A connection from `source_ip` (a loopback address) to `server`; -1 when it fails.
Fd Connect(const std::string& source_ip, const SocketAddress& server) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SocketAddress source = *SocketAddress::ParseIp(source_ip);
  if (fd.get() < 0 || bind(fd.get(), source.sockaddr_ptr(), source.length()) != 0 ||
      connect(fd.get(), server.sockaddr_ptr(), server.length()) != 0) {
    return Fd();
  }
  return fd;
}

Fd Accept(const Fd& listener) {
  return Fd(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
}

template <typename M>
std::set<std::string> Keys(const M& map) {
  std::set<std::string> out;
  for (const auto& [key, value] : map) out.insert(key);
  return out;
}

// The delta of `name`; a failure when there is none.
int64_t Delta(const v1::HostTelemetry& host, const std::string& name) {
  auto it = host.counter_deltas().find(name);
  if (it == host.counter_deltas().end()) {
    ADD_FAILURE() << "no delta for " << name;
    return -1;
  }
  return it->second;
}

// The listener of `address` in `t`; a failure and an empty one when absent.
v1::ListenSockets Listener(const v1::ShardTelemetry& t, const SocketAddress& address) {
  for (const v1::ListenSockets& l : t.listen()) {
    if (l.address() == address.ToString()) return l;
  }
  ADD_FAILURE() << "no listener " << address.ToString();
  return v1::ListenSockets();
}

// The states `counts` holds any socket in, by name.
std::set<std::string> Held(const v1::TcpStateCounts& counts) {
  std::set<std::string> out;
  for (TcpState state : AllTcpStates()) {
    if (CountOf(counts, state) > 0) out.insert(TcpStateName(state));
  }
  return out;
}

TEST(HostTelemetryTest, KernelCountersNowHoldsTheReportedCountersAndConntracks) {
  std::map<std::string, int64_t> now = KernelCountersNow();
  ASSERT_FALSE(now.empty()) << "/proc/net unreadable";
  std::set<std::string> allowed(ReportedKernelCounters().begin(), ReportedKernelCounters().end());
  absl::StatusOr<ConntrackStats> conntrack = ReadConntrack();
  if (conntrack.ok()) {
    for (const auto& [name, value] : ConntrackCounters(*conntrack)) {
      allowed.insert(name);
      EXPECT_EQ(now.count(name), 1u) << name;
    }
  }
  for (const auto& [name, value] : now) {
    EXPECT_EQ(allowed.count(name), 1u) << name << " is not a reported counter";
    EXPECT_GE(value, 0) << name;
  }
  // Every Linux kernel has these (/proc/net/snmp's Tcp line).
  EXPECT_EQ(now.count("ActiveOpens"), 1u);
  EXPECT_EQ(now.count("PassiveOpens"), 1u);
}

TEST(HostTelemetryTest, DeltasCountTheConnectionsMadeSinceTheBaseline) {
  std::map<std::string, int64_t> baseline = KernelCountersNow();
  ASSERT_EQ(baseline.count("ActiveOpens"), 1u);
  SocketAddress server;
  Fd listener = Listen(&server);
  ASSERT_GE(listener.get(), 0);
  std::vector<Fd> sockets;
  for (int i = 0; i < 3; ++i) {
    sockets.push_back(Connect("127.0.0.1", server));
    ASSERT_GE(sockets.back().get(), 0);
    sockets.push_back(Accept(listener));
    ASSERT_GE(sockets.back().get(), 0);
  }
  v1::HostTelemetry host;
  uint64_t peak = 0;
  FillHostTelemetry(baseline, &host, &peak);
  // Other processes can only add to these: at least ours are there.
  EXPECT_GE(Delta(host, "ActiveOpens"), 3);
  EXPECT_GE(Delta(host, "PassiveOpens"), 3);
  // The deltas are the counters now, less the baseline; counters never go down.
  EXPECT_EQ(host.counter_deltas_size(), static_cast<int>(KernelCountersNow().size()));
  for (const auto& [name, delta] : host.counter_deltas()) {
    EXPECT_EQ(baseline.count(name), 1u) << name;
    EXPECT_GE(delta, 0) << name;
  }
  // Our six sockets (three each way) are open and established, and the listener is in use.
  EXPECT_GE(host.tcp_in_use(), 7u);
  EXPECT_GE(host.tcp_established(), 6u);
}

TEST(HostTelemetryTest, ACounterMissingFromTheBaselineCountsFromZero) {
  std::map<std::string, int64_t> before = KernelCountersNow();
  ASSERT_FALSE(before.empty());
  std::map<std::string, int64_t> baseline = before;
  baseline.erase("ActiveOpens");
  baseline["NotAKernelCounter"] = 5;  // a name the kernel does not report is left out
  v1::HostTelemetry host;
  uint64_t peak = 0;
  FillHostTelemetry(baseline, &host, &peak);
  ASSERT_EQ(before.count("ActiveOpens"), 1u);
  EXPECT_GE(Delta(host, "ActiveOpens"), before.at("ActiveOpens"));
  EXPECT_EQ(host.counter_deltas().count("NotAKernelCounter"), 0u);
  EXPECT_EQ(Keys(host.counter_deltas()), Keys(before));
}

TEST(HostTelemetryTest, TheConntrackPeakIsTheMostEntriesSeenAcrossCalls) {
  absl::StatusOr<ConntrackStats> conntrack = ReadConntrack();
  if (!conntrack.ok()) GTEST_SKIP() << "no conntrack in this kernel: " << conntrack.status();
  // A peak seen earlier stays while the table holds fewer entries.
  uint64_t peak = std::numeric_limits<uint32_t>::max();
  v1::HostTelemetry host;
  FillHostTelemetry({}, &host, &peak);
  ASSERT_TRUE(host.has_conntrack());
  EXPECT_EQ(host.conntrack().peak_count(), std::numeric_limits<uint32_t>::max());
  EXPECT_EQ(peak, std::numeric_limits<uint32_t>::max());
  EXPECT_LT(host.conntrack().count(), host.conntrack().peak_count());
  EXPECT_EQ(host.conntrack().max(), conntrack->max);
  // From nothing, the peak is the count read.
  peak = 0;
  v1::HostTelemetry fresh;
  FillHostTelemetry({}, &fresh, &peak);
  EXPECT_EQ(fresh.conntrack().peak_count(), peak);
  EXPECT_GE(peak, fresh.conntrack().count());
}

TEST(HostTelemetryTest, AddCountsTakesEachStateOfACensusAndAdds) {
  SourceSockets sockets;
  sockets.by_state[0] = 9;  // no state has index 0: never reported
  sockets.by_state[static_cast<int>(TcpState::kEstablished)] = 3;
  sockets.by_state[static_cast<int>(TcpState::kTimeWait)] = 2;
  sockets.by_state[static_cast<int>(TcpState::kClosing)] = 1;
  v1::TcpStateCounts states;
  states.set_time_wait(5);  // from another source: added to
  AddCounts(sockets.by_state, &states);
  EXPECT_EQ(Held(states), (std::set<std::string>{"ESTABLISHED", "TIME_WAIT", "CLOSING"}));
  EXPECT_EQ(states.established(), 3u);
  EXPECT_EQ(states.time_wait(), 7u);
  EXPECT_EQ(states.closing(), 1u);
}

TEST(HostTelemetryTest, AnObserverSeesItsListenersSocketsAndPeers) {
  SocketAddress server;
  Fd listener = Listen(&server);
  ASSERT_GE(listener.get(), 0);
  SocketAddress unused;
  Fd other_listener = Listen(&unused);
  ASSERT_GE(other_listener.get(), 0);
  ObserverTelemetryCollector collector({server, unused});
  std::vector<Fd> clients, accepted;
  for (const char* source : {"127.0.0.3", "127.0.0.4", "127.0.0.4"}) {
    clients.push_back(Connect(source, server));
    ASSERT_GE(clients.back().get(), 0) << source;
    accepted.push_back(Accept(listener));
    ASSERT_GE(accepted.back().get(), 0);
  }
  v1::ShardTelemetry t = collector.Collect();
  EXPECT_EQ(t.listen_size(), 2);
  v1::ListenSockets ours = Listener(t, server);
  // The server's sides only: neither the listening socket nor the clients' sockets.
  EXPECT_EQ(Held(ours.tcp_states()), (std::set<std::string>{"ESTABLISHED"}));
  EXPECT_EQ(ours.tcp_states().established(), 3u);
  std::vector<std::string> peers(ours.peer_ips().begin(), ours.peer_ips().end());
  std::sort(peers.begin(), peers.end());
  EXPECT_EQ(peers, (std::vector<std::string>{"127.0.0.3", "127.0.0.4"}));
  v1::ListenSockets idle = Listener(t, unused);
  EXPECT_TRUE(Held(idle.tcp_states()).empty());
  EXPECT_EQ(idle.peer_ips_size(), 0);
  // Host deltas count from the collector's start.
  EXPECT_GE(Delta(t.host(), "PassiveOpens"), 3);

  // The clients close: the server's sides wait for theirs (polled: the FINs are processed
  // asynchronously, if quickly, on loopback).
  clients.clear();
  v1::ListenSockets after;
  for (int i = 0; i < 500; ++i) {
    after = Listener(collector.Collect(), server);
    if (after.tcp_states().close_wait() == 3) break;
    usleep(10 * 1000);
  }
  EXPECT_EQ(Held(after.tcp_states()), (std::set<std::string>{"CLOSE_WAIT"}));
  EXPECT_EQ(after.tcp_states().close_wait(), 3u);
}

}  // namespace
}  // namespace churnlab
