#include "host/host_telemetry.h"

#include <algorithm>
#include <set>

#include "host/conntrack.h"
#include "host/kernel_counters.h"
#include "proto/tcp_state_counts.h"

namespace churnlab {

std::map<std::string, int64_t> KernelCountersNow() {
  std::map<std::string, int64_t> counters =
      ReadKernelCounters().value_or(std::map<std::string, int64_t>{});
  if (absl::StatusOr<ConntrackStats> conntrack = ReadConntrack(); conntrack.ok()) {
    counters.merge(ConntrackCounters(*conntrack));
  }
  return counters;
}

void FillHostTelemetry(const std::map<std::string, int64_t>& baseline, v1::HostTelemetry* host,
                       uint64_t* conntrack_peak) {
  if (absl::StatusOr<ConntrackStats> conntrack = ReadConntrack(); conntrack.ok()) {
    *conntrack_peak = std::max(*conntrack_peak, conntrack->count);
    v1::ConntrackTable* table = host->mutable_conntrack();
    table->set_count(conntrack->count);
    table->set_peak_count(*conntrack_peak);
    table->set_max(conntrack->max);
  }
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

ObserverTelemetryCollector::ObserverTelemetryCollector(std::vector<SocketAddress> listen)
    : listen_(std::move(listen)), baseline_(KernelCountersNow()) {}

v1::ShardTelemetry ObserverTelemetryCollector::Collect() {
  v1::ShardTelemetry t;
  FillHostTelemetry(baseline_, t.mutable_host(), &conntrack_peak_);
  std::map<std::string, std::set<std::string>> peers;
  absl::StatusOr<std::map<std::string, SourceSockets>> census = TakeListenCensus(listen_, &peers);
  if (census.ok()) {
    for (const auto& [address, sockets] : *census) {
      v1::ListenSockets* listen = t.add_listen();
      listen->set_address(address);
      AddCounts(sockets.by_state, listen->mutable_tcp_states());
      for (const std::string& ip : peers[address]) listen->add_peer_ips(ip);
    }
  }
  return t;
}

}  // namespace churnlab
