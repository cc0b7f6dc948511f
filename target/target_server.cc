#include "target/target_server.h"

#include <errno.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace churnlab {
namespace {

// SO_REUSEPORT lets any process of the same user join a listening port, and the kernel then
// spreads the connections over both: a bind() without it fails where any socket holds the port
// (SO_REUSEADDR only passes over a TIME_WAIT there). Every fixed port is asked before the
// target binds any (its own sockets on one port, 0.0.0.0 and [::], must not refuse each other).
// Two targets started at the same moment can both pass; this is for the one left running.
absl::Status RefuseHeldPorts(const std::vector<SocketAddress>& addresses, OsSysCalls& sys) {
  for (const SocketAddress& address : addresses) {
    if (address.port() == 0) continue;
    SysCallResult s = sys.Socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!s.ok()) return absl::ErrnoToStatus(s.errno_, "socket");
    const int fd = static_cast<int>(s.rc);
    int one = 1;
    SysCallResult bound = sys.SetSockOpt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bound.ok()) bound = sys.Bind(fd, address.sockaddr_ptr(), address.length());
    sys.Close(fd);
    if (bound.ok()) continue;
    return absl::ErrnoToStatus(
        bound.errno_,
        absl::StrCat("listen on ", address.ToString(),
                     bound.errno_ == EADDRINUSE
                         ? ": another socket holds that port (another server, or a "
                           "churnlab-target left running, would take part of the connections); "
                           "bind"
                         : ": bind"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TargetServer>> TargetServer::Create(TargetParams params,
                                                                   OsSysCalls& sys, Clock& clock) {
  RETURN_IF_ERROR(ValidateTargetParams(params));
  std::unique_ptr<TargetServer> server(new TargetServer(std::move(params)));
  const TargetParams& p = server->params_;
  if (UsesTls(p.protocol)) {
    ASSIGN_OR_RETURN(server->tls_,
                     MakeServerTlsContext(p.tls_cert, p.tls_key, SpeaksHttp(p.protocol)));
  }
  if (!p.join_own_ports) RETURN_IF_ERROR(RefuseHeldPorts(p.listen, sys));
  for (int i = 0; i < p.threads; ++i) {
    server->workers_.push_back(
        std::make_unique<TargetWorker>(p, server->tls_.get(), server->shared_, sys, clock));
    // The first worker resolves port 0 in params_.listen; the others join those ports.
    RETURN_IF_ERROR(server->workers_.back()->Listen(server->params_.listen));
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
