#include "target/target_server.h"

#include "common/status_macros.h"

namespace churnlab {

absl::StatusOr<std::unique_ptr<TargetServer>> TargetServer::Create(TargetParams params,
                                                                   OsSysCalls& sys, Clock& clock) {
  RETURN_IF_ERROR(ValidateTargetParams(params));
  std::unique_ptr<TargetServer> server(new TargetServer(std::move(params)));
  const TargetParams& p = server->params_;
  if (UsesTls(p.protocol)) {
    ASSIGN_OR_RETURN(server->tls_,
                     MakeServerTlsContext(p.tls_cert, p.tls_key, SpeaksHttp(p.protocol)));
  }
  for (int i = 0; i < p.threads; ++i) {
    server->workers_.push_back(
        std::make_unique<TargetWorker>(p, server->tls_.get(), server->shared_, sys, clock));
    // The first worker resolves port 0 in params_.listen, or finds a fixed port free unless it
    // is this target's own; the others join those ports.
    RETURN_IF_ERROR(
        server->workers_.back()->Listen(server->params_.listen, i == 0 && !p.join_own_ports));
  }
  return server;
}

TargetServer::~TargetServer() { Stop(); }

void TargetServer::Start() {
  for (auto& worker : workers_) threads_.emplace_back([w = worker.get()] { w->Run(); });
}

void TargetServer::Stop() {
  for (auto& worker : workers_) worker->Wake();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  if (workers_.empty()) return;
  final_counters_ = Counters();
  workers_.clear();
}

TargetCounters TargetServer::Counters() const {
  if (workers_.empty()) return final_counters_;
  TargetCounters out;
  for (const auto& worker : workers_) worker->AddTo(&out);
  return out;
}

}  // namespace churnlab
