// churnlab-target's server on loopback (port 0): the counter and HTTP protocols, and what each
// close mode does to the connection, seen from a plain blocking client socket.
#include "target/target_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/wire_protocol.h"
#include "gtest/gtest.h"

namespace churnlab {
namespace {

// A blocking client connection; reads give up after `read_timeout` so a wrong server fails the
// test instead of hanging it.
class Client {
 public:
  Client(const SocketAddress& server, absl::Duration read_timeout = absl::Seconds(5)) {
    fd_ = socket(server.family(), SOCK_STREAM, 0);
    timeval tv = absl::ToTimeval(read_timeout);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = connect(fd_, server.sockaddr_ptr(), server.length()) == 0;
  }
  ~Client() { close(fd_); }
  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size());
  }
  // Up to `n` bytes; "" at EOF; `*error` holds errno when the read failed.
  std::string Read(size_t n, int* error = nullptr) {
    std::string out(n, '\0');
    ssize_t got = recv(fd_, out.data(), n, 0);
    if (error != nullptr) *error = got < 0 ? errno : 0;
    out.resize(got < 0 ? 0 : size_t(got));
    return out;
  }
  // The counter protocol's exchange: the server's counter after this request, -1 on failure.
  int32_t Count() {
    char request[kCounterMessageSize];
    EncodeCounter(1, request);
    if (!Send(std::string(request, sizeof request))) return -1;
    std::string answer;
    while (answer.size() < kCounterMessageSize) {
      std::string part = Read(kCounterMessageSize - answer.size());
      if (part.empty()) return -1;
      answer += part;
    }
    return DecodeCounter(answer.data());
  }
  void ShutdownWrite() { shutdown(fd_, SHUT_WR); }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::unique_ptr<TargetServer> Serve(TargetParams params) {
  params.listen = {*SocketAddress::ParseIpPort("127.0.0.1:0")};
  params.threads = 1;
  absl::StatusOr<std::unique_ptr<TargetServer>> server = TargetServer::Create(params);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return nullptr;
  (*server)->Start();
  return std::move(*server);
}

// Waits (at most 5 s) for the server's counters to satisfy `done`: the server works on its own
// thread, so what it counted after the client's last byte arrives a little later.
bool CountersReach(const TargetServer& server, const std::function<bool(TargetCounters)>& done) {
  absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (!done(server.Counters())) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

TEST(TargetServerTest, PortZeroIsResolvedToTheBoundPort) {
  std::unique_ptr<TargetServer> server = Serve({});
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(server->addresses().size(), 1u);
  EXPECT_NE(server->addresses()[0].port(), 0);
}

// A second target on a port some socket holds is refused, naming it, rather than sharing it
// through SO_REUSEPORT (a target left running took half the connections); a process of the same
// target (--processes) joins its own ports.
TEST(TargetServerTest, APortAnotherSocketHoldsIsRefusedUnlessItIsItsOwn) {
  std::unique_ptr<TargetServer> first = Serve({});
  ASSERT_NE(first, nullptr);
  TargetParams again;
  again.listen = first->addresses();
  again.threads = 1;
  absl::StatusOr<std::unique_ptr<TargetServer>> second = TargetServer::Create(again);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_NE(second.status().message().find(first->addresses()[0].ToString()), std::string::npos)
      << second.status();
  EXPECT_NE(second.status().message().find("another socket holds that port"), std::string::npos);
  again.join_own_ports = true;
  absl::StatusOr<std::unique_ptr<TargetServer>> joined = TargetServer::Create(again);
  EXPECT_TRUE(joined.ok()) << joined.status();
  // A wildcard address on that port is refused too.
  again.join_own_ports = false;
  again.listen = {
      *SocketAddress::ParseIpPort(absl::StrCat("0.0.0.0:", first->addresses()[0].port()))};
  EXPECT_FALSE(TargetServer::Create(again).ok());
  // A target's own addresses on one free port do not refuse each other (0.0.0.0 and [::]).
  const uint16_t free_port = first->addresses()[0].port();
  first.reset();
  if (joined.ok()) joined->reset();
  again.listen = {*SocketAddress::ParseIpPort(absl::StrCat("0.0.0.0:", free_port)),
                  *SocketAddress::ParseIpPort(absl::StrCat("[::]:", free_port))};
  absl::StatusOr<std::unique_ptr<TargetServer>> both = TargetServer::Create(again);
  EXPECT_TRUE(both.ok()) << both.status();
}

TEST(TargetServerTest, TheCounterGoesUpOverConnectionsAndEachIsCounted) {
  std::unique_ptr<TargetServer> server = Serve({});
  ASSERT_NE(server, nullptr);
  for (int32_t expected = 1; expected <= 3; ++expected) {
    Client client(server->addresses()[0]);
    ASSERT_TRUE(client.connected());
    EXPECT_EQ(client.Count(), expected);
  }
  EXPECT_TRUE(CountersReach(*server, [](TargetCounters c) {
    return c.accepted == 3 && c.answered == 3 && c.closed_by_peer == 3;
  }));
  EXPECT_EQ(server->Counters().errors, 0u);
}

TEST(TargetServerTest, CloseModeServerClosesRightAfterTheAnswer) {
  TargetParams params;
  params.close_mode = CloseMode::kServer;
  std::unique_ptr<TargetServer> server = Serve(params);
  ASSERT_NE(server, nullptr);
  Client client(server->addresses()[0]);
  ASSERT_TRUE(client.connected());
  EXPECT_EQ(client.Count(), 1);
  int error = 0;
  EXPECT_EQ(client.Read(1, &error), "");  // EOF: the server's FIN, not a timeout
  EXPECT_EQ(error, 0);
  EXPECT_TRUE(CountersReach(*server, [](TargetCounters c) { return c.closed_by_server == 1; }));
}

TEST(TargetServerTest, CloseModeNeverKeepsTheConnectionAfterTheClientsFinUpToTheCap) {
  TargetParams params;
  params.close_mode = CloseMode::kNever;
  params.max_leaked = 1;
  std::unique_ptr<TargetServer> server = Serve(params);
  ASSERT_NE(server, nullptr);
  Client first(server->addresses()[0], absl::Milliseconds(300));
  ASSERT_TRUE(first.connected());
  EXPECT_EQ(first.Count(), 1);
  first.ShutdownWrite();
  ASSERT_TRUE(CountersReach(*server, [](TargetCounters c) { return c.leaked == 1; }));
  int error = 0;
  EXPECT_EQ(first.Read(1, &error), "");
  EXPECT_EQ(error, EAGAIN) << "the server closed a connection it should keep (CLOSE_WAIT)";

  // The cap is reached: the next one is closed after the client's FIN after all.
  Client second(server->addresses()[0]);
  ASSERT_TRUE(second.connected());
  EXPECT_EQ(second.Count(), 2);
  second.ShutdownWrite();
  EXPECT_EQ(second.Read(1, &error), "");
  EXPECT_EQ(error, 0);
  EXPECT_TRUE(CountersReach(*server, [](TargetCounters c) { return c.leak_cap_closes == 1; }));
  EXPECT_EQ(server->Counters().leaked, 1u);
}

TEST(TargetServerTest, HttpIsAnsweredAndConnectionCloseHonoured) {
  TargetParams params;
  params.protocol = Protocol::kHttp;
  std::unique_ptr<TargetServer> server = Serve(params);
  ASSERT_NE(server, nullptr);
  Client client(server->addresses()[0]);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(HttpRequest({}, "target", /*close=*/true)));
  HttpParser parser(HttpParser::Kind::kResponse);
  HttpParser::Result result = HttpParser::Result::kNeedMore;
  while (result == HttpParser::Result::kNeedMore) {
    std::string part = client.Read(512);
    ASSERT_FALSE(part.empty()) << "no complete response before EOF";
    size_t consumed = 0;
    result = parser.Feed(part.data(), part.size(), &consumed);
  }
  ASSERT_EQ(result, HttpParser::Result::kComplete);
  EXPECT_EQ(parser.status_code(), 200);
  EXPECT_TRUE(parser.connection_close());
  int error = 0;
  EXPECT_EQ(client.Read(1, &error), "");  // "Connection: close": the server closes
  EXPECT_EQ(error, 0);
}

TEST(TargetServerTest, InvalidParamsAreRefusedBeforeListening) {
  TargetParams params;
  params.listen = {*SocketAddress::ParseIpPort("127.0.0.1:0")};
  params.backlog = 0;
  absl::StatusOr<std::unique_ptr<TargetServer>> server = TargetServer::Create(params);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TargetServerTest, CountersSurviveStop) {
  std::unique_ptr<TargetServer> server = Serve({});
  ASSERT_NE(server, nullptr);
  {
    Client client(server->addresses()[0]);
    ASSERT_TRUE(client.connected());
    EXPECT_EQ(client.Count(), 1);
  }
  ASSERT_TRUE(CountersReach(*server, [](TargetCounters c) { return c.answered == 1; }));
  server->Stop();
  server->Stop();  // idempotent
  EXPECT_EQ(server->Counters().answered, 1u);
}

}  // namespace
}  // namespace churnlab
