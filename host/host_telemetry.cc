#include "host/host_telemetry.h"

#include "host/kernel_counters.h"

namespace churnlab {

std::map<std::string, int64_t> KernelCountersNow() {
  return ReadKernelCounters().value_or(std::map<std::string, int64_t>{});
}

void FillHostTelemetry(const std::map<std::string, int64_t>& baseline, v1::HostTelemetry* host) {
  for (const auto& [name, value] : KernelCountersNow()) {
    auto base = baseline.find(name);
    (*host->mutable_counter_deltas())[name] = value - (base == baseline.end() ? 0 : base->second);
  }
  SocketTotals totals = ReadSocketTotals();
  host->set_tcp_in_use(totals.tcp_in_use);
  host->set_tcp_time_wait(totals.tcp_time_wait);
  host->set_tcp_orphans(totals.tcp_orphans);
  host->set_tcp_established(totals.tcp_established);
}

void AddTcpStates(const SourceSockets& sockets, google::protobuf::Map<std::string, uint64_t>* out) {
  for (size_t state = 1; state < sockets.by_state.size(); ++state) {
    if (sockets.by_state[state] == 0) continue;
    (*out)[TcpStateName(static_cast<TcpState>(state))] += sockets.by_state[state];
  }
}

ObserverTelemetryCollector::ObserverTelemetryCollector(std::vector<SocketAddress> listen)
    : listen_(std::move(listen)), baseline_(KernelCountersNow()) {}

v1::ShardTelemetry ObserverTelemetryCollector::Collect() {
  v1::ShardTelemetry t;
  FillHostTelemetry(baseline_, t.mutable_host());
  absl::StatusOr<std::map<std::string, SourceSockets>> census = TakeListenCensus(listen_);
  if (census.ok()) {
    for (const auto& [address, sockets] : *census) {
      v1::ListenSockets* listen = t.add_listen();
      listen->set_address(address);
      AddTcpStates(sockets, listen->mutable_tcp_states());
    }
  }
  return t;
}

}  // namespace churnlab
