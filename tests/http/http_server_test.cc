// HttpServer on 127.0.0.1 port 0, asked over plain loopback sockets: requests reach the handler as
// sent and its answers come back; body and method limits, deadlines, the connection cap, streams.
#include "http/http_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace churnlab {
namespace {

// Every wait in this file ends by then: a bound for a broken build, not a timing claim.
constexpr int kWaitSeconds = 5;

SocketAddress Loopback() { return *SocketAddress::ParseIpPort("127.0.0.1:0"); }

// Polls `done` every 5 ms for up to kWaitSeconds.
bool WaitUntil(const std::function<bool()>& done) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(kWaitSeconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

struct Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  std::string Header(absl::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return "";
  }
};

// A blocking loopback client whose every read and write gives up after kWaitSeconds.
class Client {
 public:
  explicit Client(const SocketAddress& server)
      : fd_(socket(server.family(), SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    timeval limit{kWaitSeconds, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
    connected_ = connect(fd_, server.sockaddr_ptr(), server.length()) == 0;
  }
  ~Client() { Close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  bool Send(absl::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // The status line and headers of the next response; nullopt when they do not come.
  std::optional<Response> ReadHead() {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore()) return std::nullopt;
    }
    std::vector<std::string> lines = absl::StrSplit(buffer_.substr(0, end), "\r\n");
    buffer_.erase(0, end + 4);
    Response response;
    std::vector<std::string> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
    if (status_line.size() < 2 || !absl::StartsWith(status_line[0], "HTTP/1.") ||
        !absl::SimpleAtoi(status_line[1], &response.status)) {
      ADD_FAILURE() << "not an HTTP status line: " << lines[0];
      return std::nullopt;
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      response.headers.emplace_back(
          absl::AsciiStrToLower(lines[i].substr(0, colon)),
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
    }
    return response;
  }

  // Sends `request` and reads the whole response; nullopt when either fails.
  std::optional<Response> Ask(absl::string_view request) {
    if (!Send(request)) return std::nullopt;
    return ReadResponse();
  }
  // A whole response: its body by Content-Length, by chunks, or to the close. A response to HEAD
  // has none whatever its headers say.
  std::optional<Response> ReadResponse(bool head_request = false) {
    std::optional<Response> response = ReadHead();
    if (!response || head_request) return response;
    if (response->Header("transfer-encoding") == "chunked") {
      if (!ReadChunks(&response->body)) return std::nullopt;
    } else if (std::string length = response->Header("content-length"); !length.empty()) {
      size_t n = 0;
      if (!absl::SimpleAtoi(length, &n) || !ReadExactly(n, &response->body)) return std::nullopt;
    } else {
      while (ReadMore()) {
      }
      response->body = std::move(buffer_);
      buffer_.clear();
    }
    return response;
  }

  // True when the server closes the connection (EOF or reset) within kWaitSeconds; anything it
  // sends first is dropped.
  bool WaitForClose() {
    char scratch[4096];
    for (;;) {
      ssize_t n = recv(fd_, scratch, sizeof(scratch), 0);
      if (n == 0) return true;
      if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }

 private:
  bool ReadMore() {
    char chunk[16384];
    ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
  bool ReadExactly(size_t n, std::string* out) {
    while (buffer_.size() < n) {
      if (!ReadMore()) return false;
    }
    out->append(buffer_, 0, n);
    buffer_.erase(0, n);
    return true;
  }
  bool ReadLine(std::string* line) {
    size_t end;
    while ((end = buffer_.find("\r\n")) == std::string::npos) {
      if (!ReadMore()) return false;
    }
    *line = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    return true;
  }
  bool ReadChunks(std::string* body) {
    for (;;) {
      std::string size_line, crlf;
      size_t size = 0;
      if (!ReadLine(&size_line) || !absl::SimpleHexAtoi(size_line, &size)) return false;
      if (size == 0) return ReadLine(&crlf) && crlf.empty();  // no trailers
      if (!ReadExactly(size, body) || !ReadLine(&crlf) || !crlf.empty()) return false;
    }
  }

  int fd_;
  bool connected_ = false;
  std::string buffer_;  // read, not yet consumed
};

std::string Get(absl::string_view target, absl::string_view extra_headers = "") {
  return absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\n", extra_headers, "\r\n");
}

std::string Post(absl::string_view target, absl::string_view body) {
  return absl::StrCat("POST ", target,
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ", body.size(), "\r\n\r\n",
                      body);
}

HttpServerResponse Text(int status, std::string body) {
  HttpServerResponse response;
  response.status = status;
  response.content_type = "text/plain";
  response.body = std::move(body);
  return response;
}

class HttpServerTest : public ::testing::Test {
 protected:
  using Handler = std::function<void(uint64_t id, const HttpServerRequest& request)>;

  // A server on 127.0.0.1:0 that keeps every request and hands it to `handler` (loop thread);
  // `before_start` runs between Listen() and Start(). False, with the failure added, when it
  // cannot start.
  [[nodiscard]] bool Serve(HttpServer::Options options, Handler handler,
                           const std::function<void(HttpServer*)>& before_start = nullptr) {
    absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Create(
        std::move(options), [this, handler](uint64_t id, HttpServerRequest request) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            requests_.push_back(request);
          }
          handler(id, request);
        });
    if (!server.ok()) {
      ADD_FAILURE() << server.status();
      return false;
    }
    server_ = *std::move(server);
    absl::StatusOr<SocketAddress> bound = server_->Listen(Loopback(), /*tls=*/false);
    if (!bound.ok() || !bound->is_loopback() || bound->port() == 0) {
      ADD_FAILURE() << "listening on 127.0.0.1:0: " << bound.status();
      return false;
    }
    address_ = *bound;
    if (before_start) before_start(server_.get());
    server_->Start();
    return true;
  }
  // Answers every request with 200 "ok".
  [[nodiscard]] bool ServeOk(HttpServer::Options options = {}) {
    return Serve(std::move(options), [this](uint64_t id, const HttpServerRequest&) {
      server_->Reply(id, Text(200, "ok"));
    });
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
  }
  std::vector<HttpServerRequest> Requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  std::unique_ptr<HttpServer> server_;
  SocketAddress address_;
  std::mutex mu_;
  std::vector<HttpServerRequest> requests_;  // guarded by mu_
};

TEST_F(HttpServerTest, TheHandlerSeesTheRequestAsSentAndItsAnswerGoesBack) {
  ASSERT_TRUE(Serve({}, [this](uint64_t id, const HttpServerRequest& request) {
    if (request.path != "/hello") return server_->Reply(id, Text(404, "no route"));
    HttpServerResponse response;
    response.body = absl::StrCat("{\"name\":\"", request.QueryParam("name"), "\"}");
    response.headers = {{"X-Route", "hello"}};
    server_->Reply(id, response);
  }));
  Client client(address_);
  ASSERT_TRUE(client.connected());
  std::optional<Response> hello =
      client.Ask(Get("/hello?name=a%20b+c&flag&x=1", "X-Custom-Header: Value 1\r\n"));
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->status, 200);
  EXPECT_EQ(hello->body, "{\"name\":\"a b c\"}");
  EXPECT_EQ(hello->Header("content-type"), "application/json");  // the default
  EXPECT_EQ(hello->Header("x-route"), "hello");
  // The connection stays open for the next request.
  std::optional<Response> missing = client.Ask(Get("/no%20where"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "no route");
  EXPECT_EQ(missing->Header("content-type"), "text/plain");

  std::vector<HttpServerRequest> requests = Requests();
  ASSERT_EQ(requests.size(), 2u);
  const HttpServerRequest& r = requests[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/hello");
  EXPECT_EQ(r.query, "name=a%20b+c&flag&x=1");
  EXPECT_EQ(r.QueryParam("name"), "a b c");
  EXPECT_EQ(r.QueryParam("x"), "1");
  EXPECT_EQ(r.QueryParam("flag"), "");
  EXPECT_EQ(r.QueryParam("nam"), "");
  EXPECT_EQ(r.Header("x-custom-header"), "Value 1");
  EXPECT_TRUE(r.HasHeader("host"));
  EXPECT_FALSE(r.HasHeader("X-Custom-Header"));  // names are kept in lower case
  EXPECT_FALSE(r.HasHeader("x-absent"));
  EXPECT_EQ(r.Header("x-absent"), "");
  EXPECT_EQ(r.local, address_);
  EXPECT_FALSE(r.tls);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(requests[1].path, "/no%20where");  // as sent, not decoded
  EXPECT_EQ(requests[1].query, "");
}

TEST_F(HttpServerTest, PostBodiesUpToTheLimitReachTheHandler) {
  HttpServer::Options options;
  options.max_body_bytes = 1024;
  ASSERT_TRUE(Serve(options, [this](uint64_t id, const HttpServerRequest& request) {
    server_->Reply(id, Text(201, "echo:" + request.body));
  }));
  Client client(address_);
  std::optional<Response> small = client.Ask(Post("/echo", "payload"));
  ASSERT_TRUE(small);
  EXPECT_EQ(small->status, 201);
  EXPECT_EQ(small->body, "echo:payload");
  const std::string at_limit(1024, 'x');
  std::optional<Response> full = client.Ask(Post("/echo", at_limit));
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 201);
  EXPECT_EQ(full->body, "echo:" + at_limit);
  std::vector<HttpServerRequest> requests = Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].body, "payload");
  EXPECT_EQ(requests[0].Header("content-length"), "7");
  EXPECT_EQ(requests[1].body, at_limit);
}

// RFC 9110 section 9.3.2: no content in a HEAD response, though the length a GET would get. On a
// kept-alive connection a body would be read as the start of the next response.
TEST_F(HttpServerTest, AHeadAnswerCarriesNoBody) {
  ASSERT_TRUE(Serve({}, [this](uint64_t id, const HttpServerRequest& request) {
    server_->Reply(id, Text(200, "body of " + request.method));  // as HttpApi: HEAD like GET
  }));
  Client client(address_);
  ASSERT_TRUE(client.Send("HEAD /page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  std::optional<Response> head = client.ReadResponse(/*head_request=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), "12");  // the length of the body left out
  // Had the HEAD answer carried a body, its bytes would now stand where this status line is.
  std::optional<Response> after = client.Ask(Get("/after"));
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(after->body, "body of GET");
  std::vector<HttpServerRequest> requests = Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "HEAD");
}

// Stop() closes what is open and stops listening, before the server object goes.
TEST_F(HttpServerTest, StopClosesOpenConnectionsAndTheListener) {
  ASSERT_TRUE(ServeOk({}));
  Client kept(address_);
  std::optional<Response> answered = kept.Ask(Get("/"));
  ASSERT_TRUE(answered);
  Client idle(address_);
  server_->Stop();
  EXPECT_TRUE(kept.WaitForClose());
  EXPECT_TRUE(idle.WaitForClose());
  Client late(address_);
  EXPECT_FALSE(late.connected());
}

TEST_F(HttpServerTest, ABodyOverTheLimitIsAnswered413AndNeverReachesTheHandler) {
  HttpServer::Options options;
  options.max_body_bytes = 1024;
  ASSERT_TRUE(ServeOk(options));
  {
    // Declared up front.
    Client client(address_);
    std::optional<Response> response = client.Ask(Post("/big", std::string(4096, 'x')));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 413);
  }
  {
    // Found out on the way: chunks with no Content-Length.
    Client client(address_);
    std::string request =
        "POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 4; ++i) absl::StrAppend(&request, "200\r\n", std::string(512, 'y'), "\r\n");
    absl::StrAppend(&request, "0\r\n\r\n");
    std::optional<Response> response = client.Ask(request);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 413);
  }
  EXPECT_TRUE(Requests().empty());
  // The server goes on serving.
  Client next(address_);
  std::optional<Response> ok = next.Ask(Get("/"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// The limits are exact: every body size up to max_body_bytes is served whole, one byte more is
// 413; headers up to max_header_bytes are served, past it the request is refused (431, Request
// Header Fields Too Large) and never reaches the handler.
TEST_F(HttpServerTest, EverySizeUpToTheLimitsIsServedAndOneByteMoreIsNot) {
  HttpServer::Options options;
  options.max_body_bytes = 1024;
  options.max_header_bytes = 2048;
  ASSERT_TRUE(ServeOk(options));
  for (size_t size : {size_t{0}, size_t{1}, size_t{1023}, size_t{1024}}) {
    Client client(address_);
    std::optional<Response> response = client.Ask(Post("/sized", std::string(size, 'b')));
    ASSERT_TRUE(response) << size;
    EXPECT_EQ(response->status, 200) << size;
  }
  std::vector<HttpServerRequest> served = Requests();
  ASSERT_EQ(served.size(), 4u);
  EXPECT_EQ(served[3].body.size(), 1024u);
  {
    Client client(address_);
    std::optional<Response> response = client.Ask(Post("/sized", std::string(1025, 'b')));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 413);
  }
  // Headers: the request line and Host take under 64 bytes; a filler header brings the
  // headers to about 1,900 bytes (served) or 2,100 (refused).
  for (auto [filler, status] : {std::pair{size_t{1800}, 200}, std::pair{size_t{2100}, 431}}) {
    Client client(address_);
    std::optional<Response> response =
        client.Ask(Get("/headers", absl::StrCat("X-Filler: ", std::string(filler, 'h'), "\r\n")));
    ASSERT_TRUE(response) << filler;
    EXPECT_EQ(response->status, status) << filler;
  }
  EXPECT_EQ(Requests().size(), 5u);  // the 1,800-byte header's request, and no other
}

TEST_F(HttpServerTest, MethodsOtherThanGetPostAndHeadNeverReachTheHandler) {
  ASSERT_TRUE(ServeOk());
  for (const char* method : {"PUT", "DELETE", "OPTIONS", "PATCH"}) {
    Client client(address_);
    std::optional<Response> response =
        client.Ask(absl::StrCat(method, " /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    ASSERT_TRUE(response) << method;
    EXPECT_EQ(response->status, 501) << method;
  }
  EXPECT_TRUE(Requests().empty());
}

TEST_F(HttpServerTest, IdleAndHalfSentRequestsDoNotHoldUpAnotherClient) {
  ASSERT_TRUE(ServeOk());
  Client idle(address_);
  Client half(address_);
  ASSERT_TRUE(idle.connected());
  ASSERT_TRUE(half.Send("GET /half HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  Client other(address_);
  std::optional<Response> response = other.Ask(Get("/other"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  // The half-sent request is still served once it is complete.
  std::optional<Response> late = half.Ask("\r\n");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 200);
  std::vector<HttpServerRequest> requests = Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].path, "/other");
  EXPECT_EQ(requests[1].path, "/half");
  EXPECT_EQ(server_->counters().accepted, 3u);
}

TEST_F(HttpServerTest, AnAnswerPostedFromAnotherThreadArrivesWhileOthersAreServed) {
  auto parked = std::make_shared<std::promise<uint64_t>>();
  ASSERT_TRUE(Serve({}, [this, parked](uint64_t id, const HttpServerRequest& request) {
    if (request.path == "/later") return parked->set_value(id);  // answered below
    server_->Reply(id, Text(200, "now"));
  }));
  Client waiting(address_);
  ASSERT_TRUE(waiting.Send(Get("/later")));
  std::future<uint64_t> parked_id = parked->get_future();
  ASSERT_EQ(parked_id.wait_for(std::chrono::seconds(kWaitSeconds)), std::future_status::ready);
  Client other(address_);
  std::optional<Response> now = other.Ask(Get("/now"));
  ASSERT_TRUE(now);
  EXPECT_EQ(now->body, "now");
  const uint64_t id = parked_id.get();
  server_->Post([this, id] { server_->Reply(id, Text(202, "later")); });
  std::optional<Response> later = waiting.ReadResponse();
  ASSERT_TRUE(later);
  EXPECT_EQ(later->status, 202);
  EXPECT_EQ(later->body, "later");
}

TEST_F(HttpServerTest, AConnectionWithoutACompleteRequestIsClosedAtTheDeadline) {
  HttpServer::Options options;
  options.request_deadline = absl::Milliseconds(300);  // far under write_timeout's 10 s
  ASSERT_TRUE(ServeOk(options));
  Client silent(address_);
  Client half(address_);
  ASSERT_TRUE(half.Send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  // The deadline starts again after each answer: a kept-alive connection that then goes quiet
  // is closed too.
  Client kept(address_);
  std::optional<Response> answered = kept.Ask(Get("/"));
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 200);
  EXPECT_TRUE(silent.WaitForClose());
  EXPECT_TRUE(half.WaitForClose());
  EXPECT_TRUE(kept.WaitForClose());
  EXPECT_EQ(server_->counters().request_deadline, 3u);
  EXPECT_TRUE(WaitUntil([&] { return server_->counters().open_connections == 0; }));
  EXPECT_EQ(Requests().size(), 1u);
}

TEST_F(HttpServerTest, AConnectionOverTheCapIsClosedAndTheOthersCarryOn) {
  HttpServer::Options options;
  options.max_connections = 1;
  ASSERT_TRUE(ServeOk(options));
  Client first(address_);
  ASSERT_TRUE(first.Ask(Get("/")));  // accepted and open
  Client second(address_);
  EXPECT_TRUE(second.WaitForClose());
  HttpServer::Counters counters = server_->counters();
  EXPECT_EQ(counters.accepted, 2u);
  EXPECT_EQ(counters.over_connection_cap, 1u);
  std::optional<Response> again = first.Ask(Get("/again"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(server_->counters().open_connections, 1u);
}

// Streams: the handler parks each request's id for the test, which then drives the stream.
class HttpServerStreamTest : public HttpServerTest {
 protected:
  [[nodiscard]] bool ServeStreams() {
    return Serve({}, [this](uint64_t id, const HttpServerRequest&) {
      HttpServerResponse head;
      head.content_type = "text/event-stream";
      head.headers = {{"Cache-Control", "no-store"}};
      bool started = server_->StartStream(id, head, [this] { closed_.fetch_add(1); });
      std::lock_guard<std::mutex> lock(mu_);
      if (started) ids_.push_back(id);
    });
  }
  // Waits for `n` streams to start and returns their ids.
  std::vector<uint64_t> Streams(size_t n) {
    WaitUntil([&] {
      std::lock_guard<std::mutex> lock(mu_);
      return ids_.size() >= n;
    });
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }

  std::vector<uint64_t> ids_;  // guarded by mu_
  std::atomic<int> closed_{0};
};

TEST_F(HttpServerStreamTest, ChunksSharedByStreamsReachEachUntilTheEnd) {
  ASSERT_TRUE(ServeStreams());
  Client a(address_);
  Client b(address_);
  ASSERT_TRUE(a.Send(Get("/events")));
  ASSERT_TRUE(b.Send(Get("/events")));
  std::vector<uint64_t> ids = Streams(2);
  ASSERT_EQ(ids.size(), 2u);
  auto one = std::make_shared<const std::string>("data: 1\n\n");
  auto two = std::make_shared<const std::string>("data: 2\n\n");
  auto empty = std::make_shared<const std::string>();
  server_->Post([this, ids, one, two, empty] {
    for (uint64_t id : ids) {
      server_->SendOnStream(id, one);
      server_->SendOnStream(id, empty);  // sends nothing: an empty chunk would end the stream
      server_->SendOnStream(id, two);
      server_->EndStream(id);
    }
  });
  for (Client* client : {&a, &b}) {
    std::optional<Response> response = client->ReadResponse();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->Header("content-type"), "text/event-stream");
    EXPECT_EQ(response->Header("cache-control"), "no-store");
    EXPECT_EQ(response->Header("transfer-encoding"), "chunked");
    EXPECT_EQ(response->body, "data: 1\n\ndata: 2\n\n");
  }
  // Once sent, the server holds no reference to the chunks.
  EXPECT_TRUE(WaitUntil([&] { return one.use_count() == 1 && two.use_count() == 1; }));
  server_->Stop();
  EXPECT_EQ(closed_.load(), 0);  // ended by the server: nobody to tell
}

TEST_F(HttpServerStreamTest, OnCloseRunsWhenTheClientGoes) {
  ASSERT_TRUE(ServeStreams());
  Client client(address_);
  ASSERT_TRUE(client.Send(Get("/events")));
  std::optional<Response> head = client.ReadHead();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  std::vector<uint64_t> ids = Streams(1);
  ASSERT_EQ(ids.size(), 1u);
  client.Close();
  EXPECT_TRUE(WaitUntil([&] { return closed_.load() == 1; }));
  EXPECT_TRUE(WaitUntil([&] { return server_->counters().open_connections == 0; }));
  // Sending to a stream whose client went is quietly nothing.
  auto chunk = std::make_shared<const std::string>("data: x\n\n");
  std::promise<void> sent;
  server_->Post([&] {
    server_->SendOnStream(ids[0], chunk);
    server_->EndStream(ids[0]);
    sent.set_value();
  });
  EXPECT_EQ(sent.get_future().wait_for(std::chrono::seconds(kWaitSeconds)),
            std::future_status::ready);
  EXPECT_EQ(closed_.load(), 1);
}

TEST_F(HttpServerStreamTest, StopTellsOpenStreamsAndDropsPostedWork) {
  ASSERT_TRUE(ServeStreams());
  Client client(address_);
  ASSERT_TRUE(client.Send(Get("/events")));
  ASSERT_TRUE(client.ReadHead());
  ASSERT_EQ(Streams(1).size(), 1u);
  server_->Stop();
  EXPECT_EQ(closed_.load(), 1);  // told on Stop()'s own thread, before it returned
  bool ran = false;
  server_->Post([&] { ran = true; });
  server_->Stop();  // twice is fine
  EXPECT_FALSE(ran);
  server_.reset();
  EXPECT_TRUE(client.WaitForClose());
}

TEST_F(HttpServerTest, TimersRunOnTheLoopThreadWithTheHandler) {
  // Shared with the loop thread, which may tick until TearDown() stops it.
  struct Seen {
    std::mutex mu;
    int ticks = 0;
    std::thread::id timer_thread, handler_thread;
  };
  auto seen = std::make_shared<Seen>();
  ASSERT_TRUE(Serve(
      {},
      [this, seen](uint64_t id, const HttpServerRequest&) {
        {
          std::lock_guard<std::mutex> lock(seen->mu);
          seen->handler_thread = std::this_thread::get_id();
        }
        server_->Reply(id, Text(200, "ok"));
      },
      [seen](HttpServer* server) {
        server->Every(absl::Milliseconds(10), [seen] {
          std::lock_guard<std::mutex> lock(seen->mu);
          seen->timer_thread = std::this_thread::get_id();
          ++seen->ticks;
        });
      }));
  EXPECT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(seen->mu);
    return seen->ticks >= 3;
  }));
  Client client(address_);
  ASSERT_TRUE(client.Ask(Get("/")));
  std::lock_guard<std::mutex> lock(seen->mu);
  EXPECT_EQ(seen->timer_thread, seen->handler_thread);
  EXPECT_NE(seen->timer_thread, std::this_thread::get_id());
}

TEST_F(HttpServerTest, EachListenerReportsItsOwnAddressAsTheLocalOne) {
  absl::StatusOr<SocketAddress> second;
  ASSERT_TRUE(Serve(
      {}, [this](uint64_t id, const HttpServerRequest&) { server_->Reply(id, Text(200, "ok")); },
      [&](HttpServer* server) { second = server->Listen(Loopback(), /*tls=*/false); }));
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_NE(second->port(), address_.port());
  for (const SocketAddress& address : {address_, *second}) {
    Client client(address);
    ASSERT_TRUE(client.Ask(Get("/")));
  }
  std::vector<HttpServerRequest> requests = Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].local, address_);
  EXPECT_EQ(requests[1].local, *second);
}

TEST(HttpServerSetupTest, ListenRefusesTlsWithoutACertificateAndABusyAddress) {
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Create({}, [](uint64_t, HttpServerRequest) {});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<SocketAddress> tls = (*server)->Listen(Loopback(), /*tls=*/true);
  EXPECT_EQ(tls.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(tls.status().message(), "--tls-cert")) << tls.status();

  // A port another socket listens on (without SO_REUSEADDR, so nothing may share it).
  int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(busy, 0);
  SocketAddress any_port = Loopback();
  ASSERT_EQ(bind(busy, any_port.sockaddr_ptr(), any_port.length()), 0);
  ASSERT_EQ(listen(busy, 1), 0);
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ASSERT_EQ(getsockname(busy, reinterpret_cast<sockaddr*>(&bound), &len), 0);
  absl::StatusOr<SocketAddress> taken =
      SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&bound), len);
  ASSERT_TRUE(taken.ok());
  absl::StatusOr<SocketAddress> refused = (*server)->Listen(*taken, /*tls=*/false);
  close(busy);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), taken->ToString())) << refused.status();
}

TEST(HttpServerSetupTest, CreateRefusesTlsMaterialThatDoesNotLoad) {
  HttpServer::Options options;
  options.tls_cert = "not a certificate";
  options.tls_key = "not a key";
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Create(options, [](uint64_t, HttpServerRequest) {});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(server.status().message(), "--tls-cert")) << server.status();
}

}  // namespace
}  // namespace churnlab
