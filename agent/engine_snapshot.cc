#include "agent/engine_snapshot.h"

#include <algorithm>

namespace churnlab {

std::string SourceName(const SocketAddress& source) {
  return source.family() == AF_UNSPEC ? "auto" : source.IpString();
}

absl::StatusOr<SocketAddress> SourceOfName(absl::string_view name) {
  if (name == "auto") return SocketAddress();
  return SocketAddress::ParseIp(name);
}

OutcomeCounts EngineSnapshot::Total() const {
  OutcomeCounts total;
  for (const SourceSnapshot& source : sources) total.Add(source.counts);
  return total;
}

EngineSnapshot EngineSnapshot::Since(const EngineSnapshot& earlier) const {
  EngineSnapshot delta = *this;
  delta.elapsed_nanos -= earlier.elapsed_nanos;
  delta.missed_starts -= earlier.missed_starts;
  delta.late_starts -= earlier.late_starts;
  for (size_t i = 0; i < delta.sources.size() && i < earlier.sources.size(); ++i) {
    delta.sources[i].counts.Subtract(earlier.sources[i].counts);
  }
  delta.connect_latency.Subtract(earlier.connect_latency);
  delta.tls_handshake.Subtract(earlier.tls_handshake);
  for (const auto& [code, n] : earlier.status_codes) {
    auto it = delta.status_codes.find(code);
    if (it == delta.status_codes.end()) continue;
    it->second -= std::min(it->second, n);
    if (it->second == 0) delta.status_codes.erase(it);
  }
  delta.connection_latency.Subtract(earlier.connection_latency);
  delta.start_lateness.Subtract(earlier.start_lateness);
  delta.connect_call.Subtract(earlier.connect_call);
  delta.loop_lag.Subtract(earlier.loop_lag);
  return delta;
}

void EngineSnapshot::Merge(const EngineSnapshot& other) {
  elapsed_nanos = std::max(elapsed_nanos, other.elapsed_nanos);
  missed_starts += other.missed_starts;
  late_starts += other.late_starts;
  in_flight += other.in_flight;
  held += other.held;
  processes += other.processes;
  processes_lost += other.processes_lost;
  if (sources.empty())
    sources = other.sources;
  else {
    for (size_t i = 0; i < sources.size() && i < other.sources.size(); ++i) {
      sources[i].counts.Add(other.sources[i].counts);
    }
  }
  connect_latency.Merge(other.connect_latency);
  tls_handshake.Merge(other.tls_handshake);
  for (const auto& [code, n] : other.status_codes) status_codes[code] += n;
  connection_latency.Merge(other.connection_latency);
  start_lateness.Merge(other.start_lateness);
  connect_call.Merge(other.connect_call);
  loop_lag.Merge(other.loop_lag);
}

}  // namespace churnlab
