// A target attached to the coordinator as an observer: it reports its host's server side
// (listening sockets by state, kernel counters) every telemetry interval and never takes load.
#pragma once

#include <functional>

#include <optional>
#include <vector>

#include "common/net_address.h"
#include "host/coordinator_session.h"
#include "host/host_telemetry.h"

namespace churnlab {

class ObserverSession final : public CoordinatorSession::Handler {
 public:
  // `options.hello` is completed here: observer, listening addresses, host settings.
  // `server_counts`, when given, is read for every telemetry message (the server's own counts).
  ObserverSession(CoordinatorSession::Options options, std::vector<SocketAddress> listen,
                  std::function<v1::ServerCounts()> server_counts = nullptr);

  // Serves until Shutdown(), reattaching after a lost stream.
  void Run() { session_.Run(); }
  void Shutdown() { session_.Shutdown(); }

  void OnAssign(const v1::Shard& shard) override;  // refused: an observer runs no load
  std::optional<v1::ShardTelemetry> OnTick() override;

 private:
  static CoordinatorSession::Options Complete(CoordinatorSession::Options options,
                                              const std::vector<SocketAddress>& listen);
  ObserverTelemetryCollector collector_;
  std::function<v1::ServerCounts()> server_counts_;
  CoordinatorSession session_;
};

}  // namespace churnlab
