#include "coordinator/http_api.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "coordinator/metrics.h"
#include "coordinator/source_detail.h"
#include "dashboard/report_html.h"
#include "proto/grpc_link.h"
#include "proto/message_json.h"
#include "proto/report_export.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

constexpr size_t kMaxQueuedCalls = 512;  // JSON calls waiting for a worker; more get 503
// Downloads (HTML reports, series CSV) have a thread of their own and a short queue: a burst of
// them (each reads whole reports and renders pages of HTML) waited ahead of the JSON calls and
// slowed /api/agents from 1 ms to 1.4 s, then 503s.
constexpr size_t kMaxQueuedDownloads = 16;
constexpr auto kAgentsEvery = absl::Seconds(1);

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
      return 503;
    default:
      return 500;
  }
}

HttpServerResponse ErrorResponse(const absl::Status& status) {
  HttpServerResponse res;
  res.status = HttpStatusFor(status);
  std::string escaped;
  for (char c : status.message()) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
  }
  res.body = absl::StrCat("{\"error\": \"", escaped, "\"}\n");
  if (res.status == 401) res.headers.emplace_back("WWW-Authenticate", "Bearer");
  return res;
}

HttpServerResponse JsonResponse(std::string body) {
  HttpServerResponse res;
  res.body = std::move(body);
  return res;
}

std::string SseFrame(const char* event, const std::string& one_line_json) {
  return absl::StrCat("event: ", event, "\ndata: ", one_line_json, "\n\n");
}

// "/api/runs/ID[/suffix]" -> ID when ID is [A-Za-z0-9-]+ and the rest is exactly `suffix`.
std::optional<std::string> RunIdIn(absl::string_view path, absl::string_view suffix) {
  constexpr absl::string_view kPrefix = "/api/runs/";
  if (!absl::StartsWith(path, kPrefix) || !absl::EndsWith(path, suffix)) return std::nullopt;
  absl::string_view id = path.substr(kPrefix.size(), path.size() - kPrefix.size() - suffix.size());
  if (id.empty()) return std::nullopt;
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '-') return std::nullopt;
  }
  return std::string(id);
}

// Most runs one report.html shows side by side.
constexpr size_t kMaxHtmlRuns = 16;

// The valid run ids of "A,B,C", in order; none when one is not an id.
std::vector<std::string> RunIdsIn(absl::string_view list) {
  std::vector<std::string> ids;
  for (absl::string_view id : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    std::optional<std::string> valid = RunIdIn(absl::StrCat("/api/runs/", id), "");
    if (!valid) return {};
    ids.push_back(*valid);
  }
  return ids;
}

HttpRouteKind KindOf(const HttpServerRequest& request) {
  if (request.method == "POST") return HttpRouteKind::kWrite;
  if (request.path == "/api/events") return HttpRouteKind::kEvents;
  if (request.path == "/metrics") return HttpRouteKind::kMetrics;
  if (absl::StartsWith(request.path, "/api/")) return HttpRouteKind::kRead;
  return HttpRouteKind::kPage;
}

HttpRequestFacts FactsOf(const HttpServerRequest& request) {
  HttpRequestFacts facts;
  facts.authorization = request.Header("authorization");
  facts.query_token = request.QueryParam("token");
  facts.host = request.Header("host");
  facts.has_origin = request.HasHeader("origin");
  facts.origin = request.Header("origin");
  facts.local = request.local;
  facts.tls = request.tls;
  return facts;
}

// A route that renders a whole report or series to a file: /api/runs/ID/report.html,
// /api/report.html?runs=..., /api/runs/ID/series.csv.
bool IsDownload(const HttpServerRequest& request) {
  return request.method != "POST" &&
         (absl::EndsWith(request.path, "/report.html") || absl::EndsWith(request.path, ".csv"));
}

// The headers of the event stream (Server-Sent Events).
HttpServerResponse EventsHead() {
  HttpServerResponse head;
  head.content_type = "text/event-stream";
  head.headers.emplace_back("Cache-Control", "no-cache");
  return head;
}

}  // namespace

HttpApi::HttpApi(Coordinator* coordinator, Options options)
    : coordinator_(coordinator), options_(std::move(options)), run_metrics_(options_.metrics) {}

HttpApi::~HttpApi() { Stop(); }

HttpServer::Counters HttpApi::server_counters() const {
  return server_ != nullptr ? server_->counters() : HttpServer::Counters{};
}

void HttpApi::Handle(uint64_t id, HttpServerRequest request) {
  const HttpRouteKind kind = KindOf(request);
  if (absl::Status s = CheckHttpAccess(options_.access, kind, FactsOf(request)); !s.ok()) {
    return server_->Reply(id, ErrorResponse(s));
  }
  if (kind == HttpRouteKind::kPage) return ServeFile(id, request);
  if (kind == HttpRouteKind::kEvents) {
    // HEAD gets the stream's headers and no stream: one would hold a slot and never end.
    return request.method == "HEAD" ? server_->Reply(id, EventsHead()) : ServeEvents(id);
  }
  const bool download = IsDownload(request);
  auto shared = std::make_shared<HttpServerRequest>(std::move(request));
  bool queued = (download ? downloads_ : workers_)->Submit([this, id, shared] {
    HttpServerResponse response = Api(*shared);
    server_->Post([this, id, response = std::move(response)] { server_->Reply(id, response); });
  });
  if (!queued) {
    server_->Reply(
        id, ErrorResponse(absl::UnavailableError(
                download ? "the coordinator is busy: too many downloads waiting; try again"
                         : "the coordinator is busy: too many API calls waiting; try again")));
  }
}

HttpServerResponse HttpApi::Api(const HttpServerRequest& req) {
  return req.method == "POST" ? Post(req) : Get(req);
}

HttpServerResponse HttpApi::Post(const HttpServerRequest& req) {
  const std::string& path = req.path;
  if (path == "/api/runs") {
    absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(req.body);
    if (!spec.ok()) return ErrorResponse(spec.status());
    absl::StatusOr<v1::StartRunResponse> started = coordinator_->StartRun(*std::move(spec));
    if (!started.ok()) return ErrorResponse(started.status());
    return JsonResponse(MessageToJson(*started));
  }
  if (std::optional<std::string> id = RunIdIn(path, "/cancel")) {
    absl::Status s = coordinator_->CancelRun(*id);
    if (!s.ok()) return ErrorResponse(s);
    return JsonResponse("{}\n");
  }
  return ErrorResponse(absl::NotFoundError(absl::StrCat("no route POST ", path)));
}

HttpServerResponse HttpApi::Get(const HttpServerRequest& req) {
  const std::string& path = req.path;
  if (path == "/api/agents") {
    // Every agent in summary, or ?name=NAME in full.
    std::vector<std::string> full;
    if (std::string name = req.QueryParam("name"); !name.empty()) full.push_back(name);
    v1::ListAgentsResponse response;
    for (v1::AgentInfo& agent : coordinator_->ListAgents(full)) {
      *response.add_agents() = std::move(agent);
    }
    return JsonResponse(MessageToJson(response));
  }
  if (path == "/api/runs") return RunList(req);
  if (path == "/metrics") {
    HttpServerResponse res;
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    CoordinatorHealth health{started_at_,
                             coordinator_->telemetry_messages(),
                             coordinator_->store_errors(),
                             coordinator_->telemetry_entries_refused(),
                             coordinator_->stalls(),
                             coordinator_->stalled(),
                             coordinator_->attaches_refused(),
                             coordinator_->watches_refused()};
    health.http_connections = server_counters();
    if (options_.grpc_door_counts) health.grpc_connections = options_.grpc_door_counts();
    res.body = RenderMetrics(coordinator_->ListAgents(), &run_metrics_, health);
    return res;
  }
  if (std::optional<std::string> id = RunIdIn(path, "/series.csv")) {
    absl::StatusOr<v1::RunReport> report = coordinator_->GetRun(*id);
    if (!report.ok()) return ErrorResponse(report.status());
    HttpServerResponse res;
    res.content_type = "text/csv";
    res.body = SeriesToCsv(*report);
    return res;
  }
  if (std::optional<std::string> id = RunIdIn(path, "/report.html")) return HtmlReport({*id});
  if (path == "/api/report.html") {
    std::vector<std::string> ids = RunIdsIn(req.QueryParam("runs"));
    if (ids.empty() || ids.size() > kMaxHtmlRuns) {
      return ErrorResponse(absl::InvalidArgumentError(absl::StrCat(
          "runs=ID,ID,...: from 1 to ", kMaxHtmlRuns, " run ids, separated by commas")));
    }
    return HtmlReport(ids);
  }
  if (std::optional<std::string> id = RunIdIn(path, "")) {
    absl::StatusOr<v1::RunReport> report = coordinator_->GetRun(*id);
    if (!report.ok()) return ErrorResponse(report.status());
    return JsonResponse(ReportToJson(*report));
  }
  return ErrorResponse(absl::NotFoundError(absl::StrCat("no route GET ", path)));
}

HttpServerResponse HttpApi::RunList(const HttpServerRequest& req) {
  v1::ListRunsRequest request;
  if (std::string tag = req.QueryParam("tag"); !tag.empty()) {
    absl::StatusOr<std::pair<std::string, std::string>> parsed = ParseTag(tag);
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    (*request.mutable_tags())[parsed->first] = parsed->second;
  }
  if (std::string limit = req.QueryParam("limit"); !limit.empty()) {
    // Given, it is 1 or more: 0 is the gRPC request's "not given" (the default page), which a
    // query that says limit=0 did not mean (the CLI refuses --limit=0 alike).
    uint32_t n = 0;
    if (!absl::SimpleAtoi(limit, &n) || n == 0) {
      return ErrorResponse(absl::InvalidArgumentError(
          absl::StrCat("limit: '", limit, "' is not in 1..", kMaxRunsPage)));
    }
    request.set_limit(n);
  }
  request.set_after(req.QueryParam("after"));
  if (std::string state = req.QueryParam("state"); !state.empty()) {
    absl::StatusOr<int> n = EnumFromWord(*v1::RunReport::State_descriptor(), state);
    if (!n.ok()) return ErrorResponse(n.status());
    request.set_state(static_cast<v1::RunReport::State>(*n));
  }
  absl::StatusOr<RunQuery> query = RunQueryOf(request);
  if (!query.ok()) return ErrorResponse(query.status());
  absl::StatusOr<RunPage> page = coordinator_->ListRuns(*query);
  if (!page.ok()) return ErrorResponse(page.status());
  v1::ListRunsResponse response;
  for (v1::RunSummary& run : page->runs) *response.add_runs() = std::move(run);
  response.set_next(page->next);
  return JsonResponse(MessageToJson(response));
}

// The self-contained HTML report of `ids` (dashboard/report_html.h), as a download.
HttpServerResponse HttpApi::HtmlReport(const std::vector<std::string>& ids) {
  std::vector<v1::RunReport> reports;
  for (const std::string& id : ids) {
    absl::StatusOr<v1::RunReport> report = coordinator_->GetRun(id);
    if (!report.ok()) return ErrorResponse(report.status());
    reports.push_back(*std::move(report));
  }
  HttpServerResponse res;
  res.content_type = "text/html; charset=utf-8";
  res.headers.emplace_back("Content-Disposition", absl::StrCat("attachment; filename=\"churnlab-",
                                                               absl::StrJoin(ids, "-"), ".html\""));
  res.body = ReportsToHtml(reports);
  return res;
}

void HttpApi::ServeFile(uint64_t id, const HttpServerRequest& request) {
  absl::StatusOr<StaticFile> file = ResolveStaticFile(options_.dashboard_dir, request.path);
  if (!file.ok()) {
    HttpServerResponse res;
    res.status = 404;
    res.content_type = "text/plain";
    res.body = options_.dashboard_dir.empty()
                   ? "churnlab-coordinator: no dashboard files here; pass --dashboard-dir=DIR (the "
                     "repository's dashboard/ after `npm ci`). The JSON API is under /api/.\n"
                   : "not found\n";
    return server_->Reply(id, res);
  }
  std::ifstream in(file->path, std::ios::binary);
  std::ostringstream body;
  body << in.rdbuf();
  HttpServerResponse res;
  res.content_type = file->content_type;
  res.body = body.str();
  server_->Reply(id, res);
}

std::string HttpApi::AgentsFrame() {
  v1::ListAgentsResponse agents;
  for (v1::AgentInfo& agent : coordinator_->ListAgents()) *agents.add_agents() = std::move(agent);
  return SseFrame("agents", MessageToJson(agents, /*one_line=*/true));
}

void HttpApi::ServeEvents(uint64_t id) {
  if (streams_.size() >= options_.max_streams) {
    return server_->Reply(id, ErrorResponse(absl::UnavailableError(
                                  absl::StrCat("too many event streams open (", streams_.size(),
                                               "); close a page, or raise --http-max-streams"))));
  }
  if (!server_->StartStream(id, EventsHead(), [this, id] {
        streams_.erase(id);
        stream_count_.store(streams_.size());
      })) {
    return;
  }
  streams_.insert(id);
  stream_count_.store(streams_.size());
  // What a new page needs at once: the agents (the frame of the last second), and where each
  // running run stands (from a worker: the loop never waits for the coordinator's lock). When
  // the workers are all taken, the next run point brings the latter within a second.
  if (agents_frame_ != nullptr) server_->SendOnStream(id, agents_frame_);
  workers_->Submit([this, id] {
    std::string runs;
    for (const v1::RunReport& report : coordinator_->RunningReports()) {
      runs += SseFrame("run", MessageToJson(report, /*one_line=*/true));
    }
    if (runs.empty()) return;
    auto frame = std::make_shared<const std::string>(std::move(runs));
    server_->Post([this, id, frame] { server_->SendOnStream(id, frame); });
  });
}

void HttpApi::TickAgents() {
  // Every second on the loop: one worker makes the agents frame, the loop sends it to all.
  if (streams_.empty() && agents_frame_ != nullptr) return;
  if (agents_job_pending_.exchange(true)) return;
  bool queued = workers_->Submit([this] {
    auto frame = std::make_shared<const std::string>(AgentsFrame());
    server_->Post([this, frame] {
      agents_job_pending_ = false;
      agents_frame_ = frame;
      Broadcast(frame);
    });
  });
  if (!queued) agents_job_pending_ = false;
}

void HttpApi::Broadcast(const std::shared_ptr<const std::string>& frame) {
  // SendOnStream may close a stream that fell behind, which erases it from streams_.
  std::vector<uint64_t> ids(streams_.begin(), streams_.end());
  for (uint64_t id : ids) server_->SendOnStream(id, frame);
}

absl::StatusOr<HttpApi::Bound> HttpApi::Start(const SocketAddress& address,
                                              const std::optional<SocketAddress>& plaintext) {
  if (plaintext.has_value() && !plaintext->is_loopback()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--http-plaintext-listen=", plaintext->ToString(), " must be a loopback address"));
  }
  absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Create(
      options_.server,
      [this](uint64_t id, HttpServerRequest request) { Handle(id, std::move(request)); });
  if (!server.ok()) return server.status();
  server_ = *std::move(server);
  Bound bound;
  const bool tls = !options_.server.tls_cert.empty();
  absl::StatusOr<SocketAddress> main = server_->Listen(address, tls);
  if (!main.ok()) return main.status();
  bound.address = *main;
  if (plaintext.has_value()) {
    absl::StatusOr<SocketAddress> plain = server_->Listen(*plaintext, /*tls=*/false);
    if (!plain.ok()) return plain.status();
    bound.plaintext = *plain;
  }
  workers_ = std::make_unique<WorkQueue>(options_.workers, kMaxQueuedCalls);
  downloads_ = std::make_unique<WorkQueue>(1, kMaxQueuedDownloads);
  server_->Every(kAgentsEvery, [this] { TickAgents(); });
  // Called from the coordinator's tick (after its state lock, under the watchers' lock) on every
  // series point: with no page open it costs no JSON, and no socket is touched here: the frame
  // goes to the loop thread. Pages get the report's summary (ViewerSummary), the final one too,
  // and fetch /api/runs/ID for the rest.
  watch_id_ = coordinator_->WatchAll([this](const v1::RunReport& report, bool) {
    if (stream_count_.load(std::memory_order_relaxed) == 0) return;
    auto frame = std::make_shared<const std::string>(
        SseFrame("run", MessageToJson(ViewerSummary(report), /*one_line=*/true)));
    server_->Post([this, frame] { Broadcast(frame); });
  });
  // Every run's updates and final report, so that /metrics keeps a run's final values after it
  // ends; cheap (a trimmed copy of the report).
  metrics_watch_id_ = coordinator_->WatchAll(
      [this](const v1::RunReport& report, bool final) { run_metrics_.OnReport(report, final); });
  server_->Start();
  return bound;
}

void HttpApi::Stop() {
  if (watch_id_ >= 0) coordinator_->Unwatch(watch_id_);
  watch_id_ = -1;
  if (metrics_watch_id_ >= 0) coordinator_->Unwatch(metrics_watch_id_);
  metrics_watch_id_ = -1;
  if (server_ != nullptr) server_->Stop();  // no handler runs after this
  workers_.reset();  // finishes the calls in hand; their answers are dropped with the loop
  downloads_.reset();
}

}  // namespace churnlab
