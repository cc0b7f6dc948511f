#include "coordinator/http_api.h"

#include <httplib.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/metrics.h"
#include "proto/grpc_link.h"
#include "proto/report_export.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

constexpr size_t kMaxQueuedFrames = 64;  // a client further behind loses the oldest frames
constexpr auto kAgentsEvery = std::chrono::seconds(1);

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

void SendError(httplib::Response& res, const absl::Status& status) {
  res.status = HttpStatusFor(status);
  std::string message(status.message());
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
  }
  res.set_content(absl::StrCat("{\"error\": \"", escaped, "\"}\n"), "application/json");
}

std::string SseFrame(const char* event, const std::string& one_line_json) {
  return absl::StrCat("event: ", event, "\ndata: ", one_line_json, "\n\n");
}

}  // namespace

struct HttpApi::Subscriber {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> frames;
  bool closed = false;
  std::chrono::steady_clock::time_point agents_sent;

  void Push(const std::string& frame) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (frames.size() >= kMaxQueuedFrames) frames.pop_front();
      frames.push_back(frame);
    }
    cv.notify_one();
  }
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu);
      closed = true;
    }
    cv.notify_one();
  }
};

std::string FindDashboardDir() {
  std::error_code error;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return "";
  std::filesystem::path bin = exe.parent_path();
  for (const std::filesystem::path& candidate : {bin.parent_path().parent_path() / "dashboard",
                                                 bin.parent_path() / "share/churnlab/dashboard"}) {
    if (std::filesystem::exists(candidate / "static/index.html", error)) return candidate.string();
  }
  return "";
}

HttpApi::HttpApi(Coordinator* coordinator, Options options)
    : coordinator_(coordinator),
      options_(std::move(options)),
      server_(std::make_unique<httplib::Server>()) {
  Route();
  server_->set_payload_max_length(256 * 1024);
  server_->set_read_timeout(5, 0);
  // Each event stream holds a worker thread for as long as its page is open.
  server_->new_task_queue = [] { return new httplib::ThreadPool(64); };
}

HttpApi::~HttpApi() { Stop(); }

bool HttpApi::Authorized(const httplib::Request& req, httplib::Response& res) const {
  if (BearerTokenMatches(req.get_header_value("Authorization"), options_.token)) return true;
  SendError(res, absl::UnauthenticatedError("this action needs the coordinator's token"));
  return false;
}

void HttpApi::Route() {
  server_->Get("/api/agents", [this](const httplib::Request&, httplib::Response& res) {
    v1::ListAgentsResponse response;
    for (v1::AgentInfo& agent : coordinator_->ListAgents())
      *response.add_agents() = std::move(agent);
    res.set_content(MessageToJson(response), "application/json");
  });
  server_->Get("/api/runs", [this](const httplib::Request&, httplib::Response& res) {
    absl::StatusOr<std::vector<v1::RunSummary>> runs = coordinator_->ListRuns();
    if (!runs.ok()) return SendError(res, runs.status());
    v1::ListRunsResponse response;
    for (v1::RunSummary& run : *runs) *response.add_runs() = std::move(run);
    res.set_content(MessageToJson(response), "application/json");
  });
  server_->Get(R"(/api/runs/([A-Za-z0-9-]+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 absl::StatusOr<v1::RunReport> report = coordinator_->GetRun(req.matches[1]);
                 if (!report.ok()) return SendError(res, report.status());
                 res.set_content(ReportToJson(*report), "application/json");
               });
  server_->Get(R"(/api/runs/([A-Za-z0-9-]+)/series\.csv)",
               [this](const httplib::Request& req, httplib::Response& res) {
                 absl::StatusOr<v1::RunReport> report = coordinator_->GetRun(req.matches[1]);
                 if (!report.ok()) return SendError(res, report.status());
                 res.set_content(SeriesToCsv(*report), "text/csv");
               });
  server_->Post("/api/runs", [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req, res)) return;
    absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(req.body);
    if (!spec.ok()) return SendError(res, spec.status());
    absl::StatusOr<v1::StartRunResponse> started = coordinator_->StartRun(*std::move(spec));
    if (!started.ok()) return SendError(res, started.status());
    res.set_content(MessageToJson(*started), "application/json");
  });
  server_->Post(R"(/api/runs/([A-Za-z0-9-]+)/cancel)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  if (!Authorized(req, res)) return;
                  absl::Status s = coordinator_->CancelRun(req.matches[1]);
                  if (!s.ok()) return SendError(res, s);
                  res.set_content("{}\n", "application/json");
                });
  server_->Get("/api/events",
               [this](const httplib::Request&, httplib::Response& res) { ServeEvents(res); });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(RenderMetrics(coordinator_->ListAgents(), coordinator_->RunningReports(),
                                  {started_at_, coordinator_->telemetry_messages(),
                                   coordinator_->store_errors()}),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  if (!options_.dashboard_dir.empty()) {
    server_->set_mount_point("/vendor/uplot", options_.dashboard_dir + "/node_modules/uplot/dist");
    server_->set_mount_point("/", options_.dashboard_dir + "/static");
  } else {
    server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.status = 404;
      res.set_content(
          "churnlab-coordinator: no dashboard files here; pass --dashboard-dir=DIR (the "
          "repository's dashboard/ after `npm ci`). The JSON API is under /api/.\n",
          "text/plain");
    });
  }
}

std::string HttpApi::AgentsFrame() {
  v1::ListAgentsResponse agents;
  for (v1::AgentInfo& agent : coordinator_->ListAgents()) *agents.add_agents() = std::move(agent);
  return SseFrame("agents", MessageToJson(agents, /*one_line=*/true));
}

void HttpApi::Publish(const std::string& frame) {
  std::lock_guard<std::mutex> lock(subscribers_mu_);
  for (const std::shared_ptr<Subscriber>& s : subscribers_) s->Push(frame);
}

void HttpApi::ServeEvents(httplib::Response& res) {
  auto subscriber = std::make_shared<Subscriber>();
  {
    std::lock_guard<std::mutex> lock(subscribers_mu_);
    subscribers_.insert(subscriber);
    subscriber_count_.store(subscribers_.size());
  }
  // What a new page needs at once: the agents, and where each running run stands.
  subscriber->Push(AgentsFrame());
  subscriber->agents_sent = std::chrono::steady_clock::now();
  for (const v1::RunReport& report : coordinator_->RunningReports()) {
    subscriber->Push(SseFrame("run", MessageToJson(report, /*one_line=*/true)));
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, subscriber](size_t, httplib::DataSink& sink) {
        std::string frame;
        {
          std::unique_lock<std::mutex> lock(subscriber->mu);
          subscriber->cv.wait_for(lock, kAgentsEvery, [&] {
            return subscriber->closed || !subscriber->frames.empty();
          });
          if (subscriber->closed) return false;
          for (; !subscriber->frames.empty(); subscriber->frames.pop_front()) {
            frame += subscriber->frames.front();
          }
        }
        auto now = std::chrono::steady_clock::now();
        if (now - subscriber->agents_sent >= kAgentsEvery) {
          frame += AgentsFrame();
          subscriber->agents_sent = now;
        }
        return sink.write(frame.data(), frame.size());
      },
      [this, subscriber](bool) {
        std::lock_guard<std::mutex> lock(subscribers_mu_);
        subscribers_.erase(subscriber);
        subscriber_count_.store(subscribers_.size());
      });
}

absl::StatusOr<int> HttpApi::Start(const SocketAddress& address) {
  int port = address.port();
  if (port == 0) {
    port = server_->bind_to_any_port(address.IpString());
  } else if (!server_->bind_to_port(address.IpString(), port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", address.ToString()));
  }
  // Called under the coordinator's lock on every series point: with no page open, it costs no
  // JSON (which at thousands of agents is most of a point's work).
  watch_id_ = coordinator_->WatchAll([this](const v1::RunReport& report, bool) {
    if (subscriber_count_.load(std::memory_order_relaxed) == 0) return;
    Publish(SseFrame("run", MessageToJson(report, /*one_line=*/true)));
  });
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return port;
}

void HttpApi::Stop() {
  if (watch_id_ >= 0) coordinator_->Unwatch(watch_id_);
  watch_id_ = -1;
  {
    std::lock_guard<std::mutex> lock(subscribers_mu_);
    for (const std::shared_ptr<Subscriber>& s : subscribers_) s->Close();
  }
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace churnlab
