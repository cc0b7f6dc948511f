// The coordinator's HTTP side, for the dashboard, scripts and Prometheus:
//   GET  /                          the dashboard (files from the dashboard directory)
//   GET  /vendor/uplot/...          the chart library, as npm installed it
//   GET  /api/agents[?name=NAME]    the agents in summary (attached, and lost during a run), or
//                                   the one named in full
//   GET  /api/runs                  the runs, newest first
//   GET  /api/runs/ID               one run's report
//   GET  /api/runs/ID/series.csv    its per-second series
//   GET  /api/runs/ID/report.html   its self-contained HTML report (opens offline), a download
//   GET  /api/report.html?runs=A,B  the same for several runs side by side
//   GET  /api/events                Server-Sent Events: "run" (each new series point of every
//                                   running run, and its final report, in summary: the fullest
//                                   sources only), "agents" (every second, in summary)
//   GET  /metrics                   Prometheus text exposition
//   POST /api/runs                  start a run: the body is a RunSpec as JSON
//   POST /api/runs/ID/cancel        cancel it
// Who may call what is HttpAccessRules (http_access.h): with a token every route but the page's
// files needs it (`Authorization: Bearer TOKEN`, or `?token=` for /api/events) unless
// public_read; writes also pass the Origin/Host check. The server (http_server.h) is one event
// loop; the JSON routes run on a few workers so that a slow store never stalls the loop, and
// downloads on a thread of their own so that a burst of them never holds up the JSON routes.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net_address.h"
#include "common/work_queue.h"
#include "coordinator/coordinator.h"
#include "coordinator/dashboard_files.h"
#include "coordinator/grpc_door.h"
#include "coordinator/run_metrics.h"
#include "http/http_access.h"
#include "http/http_server.h"

namespace churnlab {

class HttpApi {
 public:
  struct Options {
    // Holds static/ (the page) and node_modules/uplot (the charts); "" serves no page.
    std::string dashboard_dir;
    HttpAccessRules access;
    HttpServer::Options server;   // TLS, deadlines, connection cap
    size_t max_streams = 256;     // open /api/events streams; one more gets 503
    int workers = 4;              // threads answering the JSON routes
    RunMetrics::Options metrics;  // how long /metrics keeps a run name's series
    // The gRPC door's connection counts, for /metrics (none: not shown).
    std::function<GrpcDoor::Counts()> grpc_door_counts;
  };
  struct Bound {
    SocketAddress address;                   // TLS when the server options have a certificate
    std::optional<SocketAddress> plaintext;  // the loopback plaintext port, when asked for
  };

  HttpApi(Coordinator* coordinator, Options options);
  ~HttpApi();  // Stop()s

  // Binds `address` (port 0 picks one), with TLS when the options hold a certificate, and
  // `plaintext` (loopback only, never TLS) when given; serves on a thread of its own.
  // UNAVAILABLE naming the address when it cannot bind; INVALID_ARGUMENT for a plaintext
  // address that is not loopback or TLS material that does not load.
  absl::StatusOr<Bound> Start(const SocketAddress& address,
                              const std::optional<SocketAddress>& plaintext = std::nullopt);
  void Stop();

  HttpServer::Counters server_counters() const;

 private:
  void Handle(uint64_t id, HttpServerRequest request);
  // Runs on a worker; the answer goes back to the loop thread.
  HttpServerResponse Api(const HttpServerRequest& request);
  HttpServerResponse Post(const HttpServerRequest& request);
  HttpServerResponse Get(const HttpServerRequest& request);
  void ServeEvents(uint64_t id);
  void ServeFile(uint64_t id, const HttpServerRequest& request);
  HttpServerResponse HtmlReport(const std::vector<std::string>& ids);
  // GET /api/runs?tag=K=V&state=WORD&limit=N&after=ID: a page of runs (ListRunsRequest's rules).
  HttpServerResponse RunList(const HttpServerRequest& request);
  void Broadcast(const std::shared_ptr<const std::string>& frame);
  void TickAgents();
  std::string AgentsFrame();

  Coordinator* coordinator_;
  Options options_;
  absl::Time started_at_ = absl::Now();
  std::unique_ptr<HttpServer> server_;
  // The JSON routes (they read the run store and take the coordinator's lock, which must never
  // stall the loop that serves every other connection), and the downloads: one thread, a short
  // queue.
  std::unique_ptr<WorkQueue> workers_;
  std::unique_ptr<WorkQueue> downloads_;
  int watch_id_ = -1;
  RunMetrics run_metrics_;  // fed by its own watch, read by /metrics
  int metrics_watch_id_ = -1;
  std::set<uint64_t> streams_;                       // loop thread only
  std::shared_ptr<const std::string> agents_frame_;  // the last one sent; loop thread only
  std::atomic<bool> agents_job_pending_{false};
  std::atomic<size_t> stream_count_{0};  // streams_.size(), read without the loop
};

}  // namespace churnlab
