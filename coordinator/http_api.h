// The coordinator's HTTP side, for the dashboard, scripts and Prometheus:
//   GET  /                          the dashboard (files from the dashboard directory)
//   GET  /vendor/uplot/...          the chart library, as npm installed it
//   GET  /api/agents                the agents: attached, and lost during a run
//   GET  /api/runs                  the runs, newest first
//   GET  /api/runs/ID               one run's report
//   GET  /api/runs/ID/series.csv    its per-second series
//   GET  /api/events                Server-Sent Events: "run" (each new series point of every
//                                   running run, and its final report), "agents" (every second)
//   GET  /metrics                   Prometheus text exposition
//   POST /api/runs                  start a run: the body is a RunSpec as JSON
//   POST /api/runs/ID/cancel        cancel it
// Write actions need `Authorization: Bearer TOKEN` when the coordinator has a token.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/net_address.h"
#include "coordinator/coordinator.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace churnlab {

class HttpApi {
 public:
  struct Options {
    // Holds static/ (the page) and node_modules/uplot (the charts); "" serves no page.
    std::string dashboard_dir;
    // Needed by write actions when not empty.
    std::string token;
  };

  HttpApi(Coordinator* coordinator, Options options);
  ~HttpApi();  // Stop()s

  // Binds `address` (port 0 picks one) and serves on a thread of its own; returns the bound port.
  // UNAVAILABLE naming the address when it cannot bind.
  absl::StatusOr<int> Start(const SocketAddress& address);
  void Stop();

 private:
  struct Subscriber;

  void Route();
  // False (with 401 sent) when the request lacks the token.
  bool Authorized(const httplib::Request& req, httplib::Response& res) const;
  void ServeEvents(httplib::Response& res);
  void Publish(const std::string& frame);
  std::string AgentsFrame();

  Coordinator* coordinator_;
  Options options_;
  absl::Time started_at_ = absl::Now();
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int watch_id_ = -1;
  std::mutex subscribers_mu_;
  std::set<std::shared_ptr<Subscriber>> subscribers_;
  std::atomic<size_t> subscriber_count_{0};  // subscribers_.size(), read without the lock
};

// The dashboard directory next to the running binary: <prefix>/dashboard for build/bin/X, or
// <prefix>/share/churnlab/dashboard for an installed <prefix>/bin/X; "" when neither exists.
std::string FindDashboardDir();

}  // namespace churnlab
