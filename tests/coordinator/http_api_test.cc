// The coordinator's HTTP side in process: HttpApi over a Coordinator with an in-memory store and
// no agents, on a loopback port 0, asked with a plain HTTP client. The routes answer what the
// store holds, errors carry the status their cause implies, the token rules hold on the real
// server, and the event-stream cap refuses one more.
#include "coordinator/http_api.h"

#include <sys/socket.h>
#include <unistd.h>

#include "churnlab/v1/control.pb.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "proto/message_json.h"
#include "tests/support/source_path.h"

namespace churnlab {
namespace {

constexpr char kToken[] = "s3cret-token";

v1::RunReport FinishedRun() {
  v1::RunReport report;
  report.set_run_id("r-0001");
  report.set_state(v1::RunReport::STATE_COMPLETED);
  report.mutable_spec()->set_name("nightly");
  report.mutable_totals()->set_attempted(1600);
  report.mutable_totals()->set_succeeded(1600);
  v1::SeriesPoint* point = report.add_series();
  point->set_t_s(1);
  point->set_succeeded(800);
  return report;
}

class HttpApiTest : public ::testing::Test {
 protected:
  void Serve(HttpApi::Options options) {
    store_ = *RunStore::Open(":memory:");
    ASSERT_TRUE(store_->Save(FinishedRun()).ok());
    Coordinator::Options coordinator_options;
    coordinator_ = std::make_unique<Coordinator>(store_.get(), coordinator_options);
    options.dashboard_dir = testing::SourcePath("/dashboard");
    api_ = std::make_unique<HttpApi>(coordinator_.get(), options);
    absl::StatusOr<HttpApi::Bound> bound = api_->Start(*SocketAddress::ParseIpPort("127.0.0.1:0"));
    ASSERT_TRUE(bound.ok()) << bound.status();
    address_ = bound->address;
    client_ = std::make_unique<httplib::Client>(address_.IpString(), address_.port());
    client_->set_read_timeout(5, 0);
  }
  void TearDown() override {
    if (api_ != nullptr) api_->Stop();
  }

  std::unique_ptr<RunStore> store_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<HttpApi> api_;
  SocketAddress address_;
  std::unique_ptr<httplib::Client> client_;
};

// /api/runs a page at a time, as ListRuns: limit, after (the `next` of the page before), state;
// a bad value is a 400 naming it.
TEST_F(HttpApiTest, RunsComeAPageAtATime) {
  Serve({});
  v1::RunReport second = FinishedRun();
  second.set_run_id("r-0002");
  second.set_started_at("2026-12-06T10:00:00Z");
  ASSERT_TRUE(store_->Save(second).ok());
  auto first = client_->Get("/api/runs?limit=1");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  v1::ListRunsResponse page;
  ASSERT_TRUE(ParseMessageJson(first->body, &page).ok()) << first->body;
  ASSERT_EQ(page.runs_size(), 1);
  EXPECT_EQ(page.runs(0).run_id(), "r-0002");
  EXPECT_EQ(page.next(), "r-0002");
  auto rest = client_->Get("/api/runs?limit=1&after=r-0002&state=completed");
  ASSERT_TRUE(rest);
  ASSERT_TRUE(ParseMessageJson(rest->body, &page).ok()) << rest->body;
  ASSERT_EQ(page.runs_size(), 1);
  EXPECT_EQ(page.runs(0).run_id(), "r-0001");
  EXPECT_EQ(page.next(), "");
  for (const char* bad :
       {"/api/runs?limit=x", "/api/runs?limit=0", "/api/runs?limit=1001", "/api/runs?state=nope"}) {
    auto r = client_->Get(bad);
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 400) << bad << ": " << r->body;
  }
}

TEST_F(HttpApiTest, TheRoutesAnswerWhatTheStoreHolds) {
  Serve({});
  auto runs = client_->Get("/api/runs");
  ASSERT_TRUE(runs);
  EXPECT_EQ(runs->status, 200);
  EXPECT_NE(runs->body.find("r-0001"), std::string::npos);
  auto one = client_->Get("/api/runs/r-0001");
  ASSERT_TRUE(one);
  ASSERT_EQ(one->status, 200);
  v1::RunReport parsed;
  ASSERT_TRUE(ParseMessageJson(one->body, &parsed).ok()) << one->body;
  EXPECT_EQ(parsed.totals().succeeded(), 1600u);
  // Counts are JSON numbers, not strings.
  EXPECT_NE(one->body.find("\"succeeded\": 1600"), std::string::npos) << one->body;
  auto csv = client_->Get("/api/runs/r-0001/series.csv");
  ASSERT_TRUE(csv);
  EXPECT_EQ(csv->status, 200);
  EXPECT_EQ(csv->body.rfind("t_s,", 0), 0u) << csv->body;
  auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  auto metrics = client_->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("# TYPE churnlab_"), std::string::npos) << metrics->body;
}

TEST_F(HttpApiTest, ErrorsCarryTheStatusTheirCauseImplies) {
  Serve({});
  auto missing = client_->Get("/api/runs/r-none");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto bad_id = client_->Get("/api/runs/r%2F..");
  ASSERT_TRUE(bad_id);
  EXPECT_EQ(bad_id->status, 404);
  auto bad_spec =
      client_->Post("/api/runs", R"({"duration": "1s", "rate": -5, "targets": ["127.0.0.1:9"]})",
                    "application/json");
  ASSERT_TRUE(bad_spec);
  EXPECT_EQ(bad_spec->status, 400);
  EXPECT_NE(bad_spec->body.find("rate"), std::string::npos) << bad_spec->body;
  auto garbage = client_->Post("/api/runs", "{not json", "application/json");
  ASSERT_TRUE(garbage);
  EXPECT_EQ(garbage->status, 400);
  auto no_agents =
      client_->Post("/api/runs", R"({"duration": "1s", "rate": 10, "targets": ["127.0.0.1:9"]})",
                    "application/json");
  ASSERT_TRUE(no_agents);
  EXPECT_EQ(no_agents->status / 100, 4) << no_agents->body;  // no agent attached: refused
  EXPECT_NE(no_agents->body.find("agent"), std::string::npos) << no_agents->body;
}

TEST_F(HttpApiTest, WithATokenEveryApiRouteNeedsIt) {
  HttpApi::Options options;
  options.access.token = kToken;
  Serve(options);
  for (const char* path : {"/api/runs", "/api/runs/r-0001", "/api/agents", "/metrics"}) {
    auto anonymous = client_->Get(path);
    ASSERT_TRUE(anonymous) << path;
    EXPECT_EQ(anonymous->status, 401) << path;
    auto with_token = client_->Get(path, {{"Authorization", std::string("Bearer ") + kToken}});
    ASSERT_TRUE(with_token) << path;
    EXPECT_EQ(with_token->status, 200) << path;
  }
  auto page = client_->Get("/");  // the page's files need none: it asks for the token itself
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  auto foreign = client_->Post(
      "/api/runs",
      {{"Authorization", std::string("Bearer ") + kToken}, {"Origin", "https://evil.example"}},
      "{}", "application/json");
  ASSERT_TRUE(foreign);
  EXPECT_EQ(foreign->status, 403);
}

// Opens /api/events on a raw socket (GET, or HEAD) and returns it with the status line it got.
int OpenEvents(const SocketAddress& server, std::string* status_line,
               const std::string& method = "GET") {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, server.sockaddr_ptr(), server.length()) != 0) return fd;
  std::string request = method + " /api/events HTTP/1.1\r\nHost: " + server.ToString() + "\r\n\r\n";
  if (write(fd, request.data(), request.size()) != ssize_t(request.size())) return fd;
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  std::string head(buf, n > 0 ? size_t(n) : 0);
  *status_line = head.substr(0, head.find("\r\n"));
  return fd;
}

TEST_F(HttpApiTest, OneEventStreamPastTheCapIsRefused) {
  HttpApi::Options options;
  options.max_streams = 1;
  Serve(options);
  std::string first_status, second_status;
  int first = OpenEvents(address_, &first_status);
  int second = OpenEvents(address_, &second_status);
  EXPECT_EQ(first_status, "HTTP/1.1 200 OK");
  EXPECT_EQ(second_status.substr(0, 12), "HTTP/1.1 503") << second_status;
  close(first);
  close(second);
}

// HEAD gets the stream's headers and no stream: it holds no slot, so a page can still open one.
TEST_F(HttpApiTest, AHeadOfTheEventStreamOpensNoStream) {
  HttpApi::Options options;
  options.max_streams = 1;
  Serve(options);
  std::string head_status, get_status;
  int head = OpenEvents(address_, &head_status, "HEAD");
  EXPECT_EQ(head_status, "HTTP/1.1 200 OK");
  int get = OpenEvents(address_, &get_status);
  EXPECT_EQ(get_status, "HTTP/1.1 200 OK") << "the HEAD took the one stream";
  close(head);
  close(get);
}

TEST(StaticFileTest, ServesTheDashboardAndNothingBesideIt) {
  const std::string dir = testing::SourcePath("/dashboard");
  absl::StatusOr<StaticFile> index = ResolveStaticFile(dir, "/");
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->path, dir + "/static/index.html");
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  absl::StatusOr<StaticFile> app = ResolveStaticFile(dir, "/app.js");
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app->content_type, "text/javascript; charset=utf-8");
  for (const char* bad : {"/../CMakeLists.txt", "/%2e%2e/package.json", "/.hidden", "//etc/passwd",
                          "/vendor/uplot/../../package.json", "/nope.js", "relative"}) {
    EXPECT_EQ(ResolveStaticFile(dir, bad).status().code(), absl::StatusCode::kNotFound) << bad;
  }
  EXPECT_FALSE(ResolveStaticFile("", "/").ok());
}

}  // namespace
}  // namespace churnlab
