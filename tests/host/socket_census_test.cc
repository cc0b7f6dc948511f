// The agent's view of the kernel: its socket census agrees with `ss`, and /proc/net counters
// parse as the kernel writes them.
#include "host/socket_census.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/engine.h"
#include "gtest/gtest.h"
#include "host/bind_probe.h"
#include "host/kernel_counters.h"
#include "tests/support/network_namespace.h"
#include "tests/support/target_process.h"

namespace churnlab {
namespace {

// `ss` counts for sockets from `source` to `target` in `state`.
int SsCount(const std::string& state, const std::string& source, const SocketAddress& target) {
  absl::StatusOr<testing::CommandResult> r =
      testing::RunCommand({"ss", "-Htan", "state", state, "src", source, "dst", target.ToString()});
  if (!r.ok()) {
    ADD_FAILURE() << r.status();
    return -1;
  }
  std::vector<std::string> lines = absl::StrSplit(r->output, '\n', absl::SkipEmpty());
  return static_cast<int>(lines.size());
}

TEST(SocketCensusTest, AgreesWithSsTakenAtTheSameMoment) {
  // Connections held open by the target give ESTABLISHED sockets; finished ones TIME_WAIT. Held
  // 10 s, past every check here however slowly a busy machine runs them (held 3 s, the first
  // ones ended between the two censuses below, and the second counted 23 more TIME_WAIT).
  absl::StatusOr<testing::TargetProcess> target = testing::StartTarget({"--delay=10s"});
  ASSERT_TRUE(target.ok()) << target.status();
  absl::StatusOr<testing::TargetProcess> quick = testing::StartTarget({});
  ASSERT_TRUE(quick.ok()) << quick.status();
  EngineParams params;
  params.targets = {target->address};
  params.source_ips = {*SocketAddress::ParseIp("127.0.0.61")};
  params.bind_mode = BindMode::kNoPort;
  params.rate = 500;
  params.duration = absl::Seconds(2);
  params.io_timeout = absl::Seconds(20);
  absl::StatusOr<std::unique_ptr<Engine>> held = Engine::Create(params);
  ASSERT_TRUE(held.ok()) << held.status();
  params.targets = {quick->address};
  absl::StatusOr<std::unique_ptr<Engine>> churned = Engine::Create(params);
  ASSERT_TRUE(churned.ok());
  (*held)->Start();
  (*churned)->Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  // Every churned connection closed, so the TIME_WAIT count stands still (a minute) while the
  // census and ss are taken one after the other.
  (*churned)->Wait();

  absl::StatusOr<SocketCensus> census = TakeSocketCensus({target->address, quick->address});
  int ss_established = SsCount("established", "127.0.0.61", target->address);
  int ss_time_wait = SsCount("time-wait", "127.0.0.61", quick->address);
  ASSERT_TRUE(census.ok()) << census.status();
  const SourceSockets& sockets = (*census)["127.0.0.61"];
  uint64_t established = sockets.count(TcpState::kEstablished);
  uint64_t time_wait = sockets.count(TcpState::kTimeWait);
  EXPECT_GT(ss_established, 900);
  EXPECT_GT(ss_time_wait, 900);
  EXPECT_NEAR(static_cast<double>(established), ss_established, 0.02 * ss_established);
  EXPECT_NEAR(static_cast<double>(time_wait), ss_time_wait, 0.02 * ss_time_wait);
  EXPECT_GE(sockets.ports_in_use, established);
  // The unfiltered census counts the same sources, and every socket on the host by state.
  HostTcpStates host{};
  absl::StatusOr<SocketCensus> with_host =
      TakeSocketCensus({target->address, quick->address}, &host);
  ASSERT_TRUE(with_host.ok());
  EXPECT_NEAR(static_cast<double>((*with_host)["127.0.0.61"].count(TcpState::kTimeWait)), time_wait,
              0.02 * time_wait);
  EXPECT_GE(host[static_cast<int>(TcpState::kTimeWait)],
            (*with_host)["127.0.0.61"].count(TcpState::kTimeWait));
  EXPECT_GE(host[static_cast<int>(TcpState::kListen)], 2u);  // the two targets, at least
  (*held)->Stop();
  (*held)->Wait();
}

// The ports of a range that sockets hold, whatever their address and state, listeners apart: a
// listener's port, and a client's port taken by bind() on another address, as `ss` lists them.
TEST(SocketCensusTest, RangeUseCountsEveryHeldPortAndTheListenersApart) {
  auto bound = [](int fd, const char* ip) {
    SocketAddress a = *SocketAddress::ParseIp(ip);
    EXPECT_EQ(bind(fd, a.sockaddr_ptr(), a.length()), 0) << ip;
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
    return static_cast<int>(ntohs(local.sin_port));
  };
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int listen_port = bound(listener, "127.0.0.1");
  ASSERT_EQ(listen(listener, 4), 0);
  // The client's port must be no other program's listening port (tests run side by side, and a
  // listener on port 0 takes one from the same range): ss says so, or it takes another.
  int client = -1;
  int client_port = 0;
  for (int tries = 0; tries < 20; ++tries) {
    client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    client_port = bound(client, "127.0.0.3");
    absl::StatusOr<testing::CommandResult> listening =
        testing::RunCommand({"ss", "-Htln", absl::StrCat("( sport = :", client_port, " )")});
    ASSERT_TRUE(listening.ok());
    if (listening->output.empty()) break;
    close(client);
    client = -1;
  }
  ASSERT_GE(client, 0) << "every port bind() gave was another program's listening port";
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(listen_port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);

  absl::StatusOr<RangeUse> at_listener = TakeRangeUse(listen_port, listen_port);
  ASSERT_TRUE(at_listener.ok()) << at_listener.status();
  EXPECT_GE(at_listener->in_use, 1u);
  EXPECT_EQ(at_listener->listening, 1u);
  absl::StatusOr<RangeUse> at_client = TakeRangeUse(client_port, client_port);
  ASSERT_TRUE(at_client.ok());
  EXPECT_EQ(at_client->in_use, 1u);
  EXPECT_EQ(at_client->listening, 0u);
  // A whole span, against ss's distinct local ports in it. Other programs' sockets fill the span
  // too, and on a busy host they come and go between any two readings (a fresh clone's test
  // command: ss counted 1,861 ports just after the census counted 1,760), so ss is read before
  // and after the census, and the census must fall between the two; a host that moved too far
  // the other way in between gets another try.
  int low = std::min(listen_port, client_port);
  int high = std::max(listen_port, client_port);
  auto ss_ports = [&]() -> double {
    absl::StatusOr<testing::CommandResult> ss = testing::RunCommand(
        {"ss", "-Htan", absl::StrCat("( sport >= :", low, " and sport <= :", high, " )")});
    if (!ss.ok()) {
      ADD_FAILURE() << ss.status();
      return -1;
    }
    std::set<std::string> ports;
    for (absl::string_view line : absl::StrSplit(ss->output, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (fields.size() >= 4) ports.insert(std::string(fields[3].substr(fields[3].rfind(':') + 1)));
    }
    return static_cast<double>(ports.size());
  };
  bool between = false;
  for (int tries = 0; tries < 5 && !between; ++tries) {
    double before = ss_ports();
    absl::StatusOr<RangeUse> span = TakeRangeUse(low, high);
    double after = ss_ports();
    ASSERT_TRUE(span.ok()) << span.status();
    const double in_use = static_cast<double>(span->in_use);
    between = in_use >= 0.98 * std::min(before, after) - 2 &&
              in_use <= 1.02 * std::max(before, after) + 2;
    if (!between) {
      std::cerr << "census " << in_use << " outside ss's " << before << " and " << after << "\n";
    }
  }
  EXPECT_TRUE(between) << "five censuses of the span, none between ss's readings around it";
  EXPECT_EQ(TakeRangeUse(0, 0)->in_use, 0u);  // no range: nothing
  close(client);
  close(listener);
}

int LocalPort(int fd) {
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  return ntohs(local.sin_port);
}

// Which held ports bind() took, as the kernel's own port choice answers: a port bind() took on
// another address (idle, listening, or in TIME_WAIT after a connection) is skipped by connect()
// for every destination; a port connect() took (autobind, or bind mode no-port), or its TIME_WAIT,
// is not. The probe sends nothing and leaves nothing behind (ss).
TEST(BindProbeTest, TellsThePortsBindTookFromThoseConnectTook) {
  auto socket_at = [](const char* ip, bool no_port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int on = 1;
    if (no_port) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof(on));
    if (ip != nullptr) {
      SocketAddress a = *SocketAddress::ParseIp(ip);
      EXPECT_EQ(bind(fd, a.sockaddr_ptr(), a.length()), 0) << ip;
    }
    return fd;
  };
  int listener = socket_at("127.0.0.1", false);
  ASSERT_EQ(listen(listener, 16), 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(LocalPort(listener)));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto connected = [&](int fd) {
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
    return fd;
  };
  int idle_bound = socket_at("127.0.0.3", false);
  int bound_client = connected(socket_at("127.0.0.3", false));
  int auto_client = connected(socket_at(nullptr, false));
  int no_port_client = connected(socket_at("127.0.0.4", true));
  // Two clients that close first, leaving TIME_WAIT: one bind()'s port, one connect()'s.
  int bound_tw = connected(socket_at("127.0.0.5", false));
  int auto_tw = connected(socket_at(nullptr, false));
  const int bound_tw_port = LocalPort(bound_tw);
  const int auto_tw_port = LocalPort(auto_tw);
  std::vector<int> accepted;
  for (int i = 0; i < 5; ++i) accepted.push_back(accept(listener, nullptr, nullptr));
  close(bound_tw);
  close(auto_tw);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  PortSet held;
  for (int fd : {listener, idle_bound, bound_client, auto_client, no_port_client}) {
    held.set(LocalPort(fd));
  }
  held.set(bound_tw_port);
  held.set(auto_tw_port);
  absl::StatusOr<std::unique_ptr<PortSet>> taken = BindTakenPorts(held);
  if (!taken.ok()) GTEST_SKIP() << taken.status();  // no CAP_NET_ADMIN, or Linux before 6.3
  for (int port :
       {LocalPort(listener), LocalPort(idle_bound), LocalPort(bound_client), bound_tw_port}) {
    EXPECT_TRUE((*taken)->test(port)) << "bind() took " << port;
  }
  for (int port : {LocalPort(auto_client), LocalPort(no_port_client), auto_tw_port}) {
    EXPECT_FALSE((*taken)->test(port)) << "connect() took " << port;
  }
  EXPECT_EQ((*taken)->count(), 4u);
  // Nothing left toward the probe's address: no SYN, no TIME_WAIT. (A probe's socket is
  // ESTABLISHED, then FIN-WAIT-1, for the moment between its connect() and close(), and every
  // idle agent on the host probes the range every few seconds, so ss may list one of theirs.)
  absl::StatusOr<testing::CommandResult> ss = testing::RunCommand(
      {"ss", "-Htan", "state", "syn-sent", "state", "time-wait", "dst", "127.255.255.254"});
  ASSERT_TRUE(ss.ok());
  EXPECT_EQ(ss->output, "");
  for (int fd : accepted) close(fd);
  for (int fd : {listener, idle_bound, bound_client, auto_client, no_port_client}) close(fd);
}

// The probe moves no TCP counter of the host's: in a namespace of the test's own, /proc/net's
// counters are the same before and after asking about a listener's port (its accepted sockets'
// too), a connected client's and a TIME_WAIT's. (Closed from ESTABLISHED, each usable port's
// probe counted one EstabResets, and every report's kernel counters showed hundreds of them.)
TEST(BindProbeTest, MovesNoTcpCounter) {
  absl::StatusOr<testing::NetworkNamespace> ns = testing::NetworkNamespace::Create("probe");
  if (!ns.ok()) GTEST_SKIP() << ns.status();
  absl::Status unknown = absl::OkStatus();
  absl::Status ran = ns->RunInside([&] {
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SocketAddress at = *SocketAddress::ParseIp("127.0.0.1");
    ASSERT_EQ(bind(listener, at.sockaddr_ptr(), at.length()), 0);
    ASSERT_EQ(listen(listener, 16), 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(LocalPort(listener)));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::vector<int> fds = {listener};
    for (int i = 0; i < 2; ++i) {
      int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
      fds.push_back(client);
      fds.push_back(accept(listener, nullptr, nullptr));
    }
    PortSet held;
    for (int fd : fds) held.set(LocalPort(fd));
    // The second client closes first, then its server side: the client's port in TIME_WAIT.
    close(fds[3]);
    close(fds[4]);
    fds.resize(3);
    // The counters stand still once the closes' last segments (a delayed ACK) are out.
    absl::StatusOr<std::map<std::string, int64_t>> before = ns->KernelCounters();
    for (int i = 0; i < 50; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      absl::StatusOr<std::map<std::string, int64_t>> again = ns->KernelCounters();
      ASSERT_TRUE(before.ok() && again.ok());
      if (*again == *before) break;
      before = again;
    }
    absl::StatusOr<std::unique_ptr<PortSet>> taken = BindTakenPorts(held);
    absl::StatusOr<std::map<std::string, int64_t>> after = ns->KernelCounters();
    ASSERT_TRUE(after.ok()) << after.status();
    if (!taken.ok()) {
      unknown = taken.status();
      return;
    }
    EXPECT_EQ(held.count(), 3u);  // the listener's (and its accepted sockets'), two clients'
    // Only the listener's port is bind()'s: the two clients' were asked the usable way, which
    // is the way that connects (and used to count).
    EXPECT_EQ((*taken)->count(), 1u);
    EXPECT_TRUE((*taken)->test(LocalPort(listener)));
    for (const auto& [name, value] : *after) {
      if (name == "CurrEstab") continue;  // a gauge: the test's own connections
      auto was = before->find(name);
      EXPECT_EQ(value, was == before->end() ? 0 : was->second) << name;
    }
    for (int fd : fds) close(fd);
  });
  ASSERT_TRUE(ran.ok()) << ran;
  if (!unknown.ok()) GTEST_SKIP() << unknown;  // no CAP_NET_ADMIN, or Linux before 6.3
}

// A listener on a wildcard address (0.0.0.0, or [::] taking IPv4 clients as v4-mapped sockets)
// owns the sockets accepted on any of the host's addresses: the observer counts them all, as
// `ss` does (it used to count none).
TEST(SocketCensusTest, AWildcardListenerCountsWhatItAcceptedOnEveryAddress) {
  for (const char* wildcard : {"0.0.0.0", "::"}) {
    int family = std::string(wildcard) == "::" ? AF_INET6 : AF_INET;
    int listener = socket(family, SOCK_STREAM, 0);
    ASSERT_GE(listener, 0);
    sockaddr_storage any{};
    any.ss_family = static_cast<sa_family_t>(family);
    socklen_t length = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&any), length), 0);
    ASSERT_EQ(listen(listener, 64), 0);
    ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&any), &length), 0);
    int port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&any)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&any)->sin6_port);
    std::vector<int> fds;
    for (const char* ip : {"127.0.0.1", "127.0.0.2", "127.0.0.3"}) {
      for (int i = 0; i < 5; ++i) {
        SocketAddress to = *SocketAddress::ParseIpPort(absl::StrCat(ip, ":", port));
        int c = socket(AF_INET, SOCK_STREAM, 0);
        ASSERT_EQ(connect(c, to.sockaddr_ptr(), to.length()), 0) << ip;
        fds.push_back(c);
        fds.push_back(accept(listener, nullptr, nullptr));
        ASSERT_GE(fds.back(), 0);
      }
    }
    SocketAddress listening = *SocketAddress::ParseIpPort(
        family == AF_INET ? absl::StrCat("0.0.0.0:", port) : absl::StrCat("[::]:", port));
    absl::StatusOr<std::map<std::string, SourceSockets>> census =
        TakeListenCensus({listening}, nullptr);
    ASSERT_TRUE(census.ok()) << census.status();
    absl::StatusOr<testing::CommandResult> ss = testing::RunCommand(
        {"ss", "-Htan", "state", "established", "sport", absl::StrCat("= :", port)});
    ASSERT_TRUE(ss.ok()) << ss.status();
    std::vector<std::string> lines = absl::StrSplit(ss->output, '\n', absl::SkipEmpty());
    const SourceSockets& on = (*census)[listening.ToString()];
    EXPECT_EQ(lines.size(), 15u) << wildcard;
    EXPECT_EQ(on.count(TcpState::kEstablished), lines.size()) << wildcard;
    for (int fd : fds) close(fd);
    close(listener);
  }
}

TEST(SocketCensusTest, CountsOnlySocketsTowardTheTargetsByLocalAddress) {
  SocketAddress target = *SocketAddress::ParseIpPort("127.0.0.1:9000");
  SocketAddress other = *SocketAddress::ParseIpPort("127.0.0.1:9001");
  auto sock = [](TcpState state, const char* local, const SocketAddress& remote) {
    return TcpSocketInfo{state, *SocketAddress::ParseIpPort(local), remote};
  };
  SocketCensus census = CountSockets(
      {sock(TcpState::kTimeWait, "127.0.0.2:40000", target),
       sock(TcpState::kEstablished, "127.0.0.2:40001", target),
       sock(TcpState::kTimeWait, "127.0.0.2:40000", other),  // other target: not counted
       sock(TcpState::kSynSent, "127.0.0.3:40000", target),
       sock(TcpState::kListen, "127.0.0.1:9000", target)},
      {target});
  EXPECT_EQ(census["127.0.0.2"].ports_in_use, 2u);
  EXPECT_EQ(census["127.0.0.2"].count(TcpState::kTimeWait), 1u);
  EXPECT_EQ(census["127.0.0.3"].count(TcpState::kSynSent), 1u);
  EXPECT_EQ(census.count("127.0.0.1"), 0u);
}

TEST(KernelCountersTest, ParsesHeaderAndValueLinePairs) {
  std::map<std::string, int64_t> c = ParseProcNetCounters(
      "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n"
      "TcpExt: 0 17 19\n"
      "IpExt: InNoRoutes\n"
      "IpExt: 3\n");
  EXPECT_EQ(c["ListenOverflows"], 17);
  EXPECT_EQ(c["ListenDrops"], 19);
  EXPECT_EQ(c["InNoRoutes"], 3);
  absl::StatusOr<std::map<std::string, int64_t>> real = ReadKernelCounters();
  ASSERT_TRUE(real.ok());
  for (const char* name :
       {"ListenOverflows", "ActiveOpens", "TW", "TCPSynRetrans", "RetransSegs"}) {
    EXPECT_EQ(real->count(name), 1u) << name;
  }
}

}  // namespace
}  // namespace churnlab
