#include "coordinator/http_api.h"

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "proto/report_export.h"

namespace churnlab {
namespace {

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kInvalidArgument:
      return 400;
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

}  // namespace

HttpApi::HttpApi(Coordinator* coordinator)
    : coordinator_(coordinator), server_(std::make_unique<httplib::Server>()) {
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
  server_->set_payload_max_length(64 * 1024);
  server_->set_read_timeout(5, 0);
}

HttpApi::~HttpApi() { Stop(); }

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
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return port;
}

void HttpApi::Stop() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace churnlab
