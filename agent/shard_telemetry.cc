#include "agent/shard_telemetry.h"

#include <google/protobuf/util/time_util.h>
#include <time.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "agent/destinations.h"
#include "host/host_telemetry.h"
#include "proto/tcp_state_counts.h"
#include "proto/telemetry_codec.h"

namespace churnlab {

namespace {

// The engine's phase on the wire: the same order, one higher (telemetry.proto). The words match
// PhaseName's (shard_telemetry_test checks every phase).
static_assert(v1::FAILURE_PHASE_SOCKET == static_cast<int>(Phase::kSocket) + 1);
static_assert(v1::FailurePhase_MAX == kPhaseCount);
v1::FailurePhase ToProto(Phase phase) {
  return static_cast<v1::FailurePhase>(static_cast<int>(phase) + 1);
}

// A census is due a telemetry beat (1 s) after the last started, less some slack for jitter,
// and at most 30 s after (CensusGapNanos).
constexpr int64_t kMinCensusGapNanos = 950'000'000;

// No bind (an empty address) or a wildcard bind (0.0.0.0, ::): the census sees the address the
// kernel chose, never the wildcard itself.
bool KernelPicksAddress(const SocketAddress& source) {
  return source.family() == AF_UNSPEC || source.is_unspecified();
}

// The census entries that count for `source`: every local address when the kernel picks it,
// else its own.
std::vector<const SourceSockets*> SocketsOf(const SocketCensus& census,
                                            const SocketAddress& source) {
  std::vector<const SourceSockets*> out;
  if (KernelPicksAddress(source)) {
    for (const auto& [ip, sockets] : census) out.push_back(&sockets);
  } else if (auto it = census.find(source.IpString()); it != census.end()) {
    out.push_back(&it->second);
  }
  return out;
}

}  // namespace

v1::ShardTelemetry SnapshotToTelemetry(const EngineSnapshot& snapshot, const std::string& run_id,
                                       bool final) {
  v1::ShardTelemetry t;
  t.set_run_id(run_id);
  *t.mutable_elapsed() =
      google::protobuf::util::TimeUtil::NanosecondsToDuration(snapshot.elapsed_nanos);
  for (const SourceSnapshot& source : snapshot.sources) {
    v1::SourceCounts* s = t.add_sources();
    s->set_ip(SourceName(source.source));
    s->set_attempted(source.counts.attempted);
    s->set_succeeded(source.counts.succeeded);
    s->set_requests(source.counts.requests);
    s->set_tls_full(source.counts.tls_full);
    s->set_tls_resumed(source.counts.tls_resumed);
    source.counts.ForEachFailure([s](Phase phase, int code, uint64_t count) {
      v1::FailureCount* f = s->add_failures();
      f->set_phase(ToProto(phase));
      f->set_code(OutcomeCodeName(phase, code));
      f->set_count(count);
    });
  }
  t.set_missed_starts(snapshot.missed_starts);
  t.set_late_starts(snapshot.late_starts);
  t.set_in_flight(snapshot.in_flight);
  t.set_held(snapshot.held);
  t.set_engine_processes(snapshot.processes);
  t.set_engine_processes_lost(snapshot.processes_lost);
  HistogramToProto(snapshot.connect_latency, t.mutable_connect_latency());
  HistogramToProto(snapshot.connection_latency, t.mutable_connection_latency());
  HistogramToProto(snapshot.connect_call, t.mutable_connect_call());
  HistogramToProto(snapshot.loop_lag, t.mutable_loop_lag());
  if (snapshot.tls_handshake.count() > 0) {
    HistogramToProto(snapshot.tls_handshake, t.mutable_tls_handshake());
  }
  t.mutable_status_codes()->insert(snapshot.status_codes.begin(), snapshot.status_codes.end());
  t.set_final(final);
  return t;
}

ShardTelemetryCollector::ShardTelemetryCollector(std::string run_id,
                                                 std::vector<SocketAddress> targets,
                                                 uint64_t port_range_size, Clock& clock)
    : run_id_(std::move(run_id)),
      clock_(clock),
      targets_(std::move(targets)),
      port_range_size_(port_range_size),
      baseline_(KernelCountersNow()) {}

void ShardTelemetryCollector::AddSockets(const SourceSockets& sockets, v1::SourceCounts* out) {
  out->set_ports_in_use(out->ports_in_use() + sockets.ports_in_use);
  AddCounts(sockets.by_state, out->mutable_tcp_states());
}

ShardTelemetryCollector::~ShardTelemetryCollector() {
  if (pending_.valid()) pending_.wait();
}

bool ShardTelemetryCollector::UpdateCensus(bool final) {
  int64_t now = clock_.NowNanos();
  bool fresh = false;
  if (pending_.valid() &&
      (final || pending_.wait_for(std::chrono::seconds(0)) == std::future_status::ready)) {
    census_ = pending_.get();
    census_taken_at_ = census_started_;
    host_states_ = pending_host_states_;
    // About 1% of a core, by the CPU the census itself used (not the wall time it took, which a
    // busy CPU stretches many times over and which used to leave the live census 30 s stale
    // while the kernel filled up), but at least every 30 s: on a host holding a million
    // connections a census costs a second or two, and the peaks must still be seen. A cheap
    // census is due a beat after it started, so that every beat carries a fresh one.
    next_census_ = census_started_ + CensusGapNanos(pending_cost_, 100, kMinCensusGapNanos);
    fresh = true;
  }
  if (final) {
    // The last message's census is taken now, whole host, whatever it costs.
    census_ = TakeSocketCensus(targets_, &host_states_);
    census_taken_at_ = now;
    return true;
  }
  if (!pending_.valid() && now >= next_census_) {
    // In the background: with a million sockets on the host a census takes seconds, and the
    // telemetry must keep its one-second beat (the coordinator counts silence as a loss).
    // Counting the whole host costs a second pass over the socket table (IPv6 as well as IPv4
    // sockets), so it is done every tenth census and for the final message.
    bool whole_host = census_count_++ % 10 == 0;
    census_started_ = now;
    // Its cost is the CPU time of the thread that takes it; clock_ only says when one is due.
    // Its own copy of the destinations: a lookup may change targets_ while it runs.
    pending_ = std::async(std::launch::async, [this, whole_host, targets = targets_] {
      int64_t start = ThreadCpuNanos();
      absl::StatusOr<SocketCensus> census =
          TakeSocketCensus(targets, whole_host ? &pending_host_states_ : nullptr);
      pending_cost_ = ThreadCpuNanos() - start;
      return census;
    });
  }
  return fresh;
}

v1::PortsAtStart PortsAtStartOf(const RangeUse& range) {
  v1::PortsAtStart out;
  out.set_in_use(range.in_use);
  out.set_listening(range.listening);
  out.set_time_wait(range.time_wait);
  out.set_bind_taken(range.bind_taken);
  out.set_bind_taken_known(range.bind_taken_known);
  return out;
}

void ShardTelemetryCollector::SetPortsAtStart(const absl::StatusOr<SocketCensus>& toward_targets,
                                              const absl::StatusOr<RangeUse>& range) {
  if (toward_targets.ok()) at_start_ = *toward_targets;
  if (range.ok()) range_at_start_ = *range;
}

void ShardTelemetryCollector::SetDestinations(const std::vector<SocketAddress>& targets,
                                              const std::vector<std::string>& names) {
  targets_ = targets;
  std::map<std::string, std::pair<uint32_t, uint32_t>> lookups;  // kept from the last table
  for (const v1::ResolvedTarget& r : resolved_) {
    lookups[r.name()] = {r.lookups(), r.failed_lookups()};
  }
  resolved_.Clear();
  for (const Resolution& used : UsedByName(targets, names)) {
    v1::ResolvedTarget* r = resolved_.Add();
    r->set_name(absl::StrCat(used.target.host, ":", used.target.port));
    auto known = lookups.find(r->name());
    r->set_lookups(known == lookups.end() ? 1 : known->second.first);
    r->set_failed_lookups(known == lookups.end() ? 0 : known->second.second);
    for (const SocketAddress& a : used.addresses) {
      if (r->addresses_size() == kMaxReportedAddresses) break;
      r->add_addresses(a.ToString());
    }
    // addresses_used says more only when the list is cut.
    if (used.addresses.size() > static_cast<size_t>(r->addresses_size())) {
      r->set_addresses_used(static_cast<uint32_t>(used.addresses.size()));
    }
  }
}

void ShardTelemetryCollector::SetLookups(const std::string& name, uint32_t lookups,
                                         uint32_t failed) {
  for (v1::ResolvedTarget& r : resolved_) {
    if (r.name() != name) continue;
    r.set_lookups(lookups);
    r.set_failed_lookups(failed);
  }
}

v1::ShardTelemetry ShardTelemetryCollector::Collect(const EngineSnapshot& snapshot, bool final) {
  v1::ShardTelemetry t = SnapshotToTelemetry(snapshot, run_id_, final);
  *t.mutable_resolved_targets() = resolved_;
  t.set_port_range_size(port_range_size_);
  bool fresh_census = UpdateCensus(final);
  const absl::StatusOr<SocketCensus>& census = census_;
  if (census.ok() && census_taken_at_ >= 0) {
    *t.mutable_census_age() = google::protobuf::util::TimeUtil::NanosecondsToDuration(
        std::max<int64_t>(0, clock_.NowNanos() - census_taken_at_));
  }
  uint64_t established = 0;
  for (int i = 0; i < t.sources_size(); ++i) {  // one per snapshot source, in its order
    v1::SourceCounts& source = *t.mutable_sources(i);
    const SocketAddress& address = snapshot.sources[i].source;
    if (census.ok()) {
      for (const SourceSockets* sockets : SocketsOf(*census, address)) {
        AddSockets(*sockets, &source);
      }
    }
    if (at_start_.has_value()) {
      for (const SourceSockets* sockets : SocketsOf(*at_start_, address)) {
        source.set_ports_in_use_at_start(source.ports_in_use_at_start() + sockets->ports_in_use);
        source.set_ports_bind_taken_at_start(source.ports_bind_taken_at_start() +
                                             sockets->ports_bind_taken);
      }
    }
    Peaks& peaks = peaks_[source.ip()];
    peaks.ports_in_use = std::max(peaks.ports_in_use, source.ports_in_use());
    const v1::TcpStateCounts& states = source.tcp_states();
    peaks.time_wait = std::max(peaks.time_wait, states.time_wait());
    peaks.fin_wait2 = std::max(peaks.fin_wait2, states.fin_wait2());
    peaks.established = std::max(peaks.established, states.established());
    established += states.established();
    source.set_peak_established(peaks.established);
    source.set_peak_ports_in_use(peaks.ports_in_use);
    source.set_peak_time_wait(peaks.time_wait);
    source.set_peak_fin_wait2(peaks.fin_wait2);
  }
  peak_in_flight_ = std::max(peak_in_flight_, snapshot.in_flight);
  t.set_peak_in_flight(peak_in_flight_);
  // Only a census taken now says the connections are held now: a stale one kept after they
  // closed would pair their peak with the memory left once they are gone.
  if (fresh_census) AddMemory(established);
  *t.mutable_memory() = memory_;
  if (range_at_start_.has_value()) *t.mutable_ports_at_start() = PortsAtStartOf(*range_at_start_);
  FillHostTelemetry(baseline_, t.mutable_host(), &conntrack_peak_);
  AddCounts(host_states_, t.mutable_host()->mutable_tcp_states());
  return t;
}

void ShardTelemetryCollector::AddMemory(uint64_t established) {
  // A few /proc reads per engine process: cheap beside the census, taken as often.
  memory_.set_mem_available_at_start_bytes(memory_at_start_.mem_available_bytes);
  memory_.set_pss_at_start_bytes(pss_at_start_);
  if (memory_.processes() != 0 && (established == 0 || established < peak_established_)) return;
  ProcessMemory process = SelfAndChildrenMemory();
  memory_.set_pss_bytes(process.pss_bytes);
  memory_.set_rss_bytes(process.rss_bytes);
  memory_.set_processes(process.processes);
  if (established > 0) {
    peak_established_ = established;
    memory_.set_slab_growth_bytes(ReadHostMemory().slab_bytes - memory_at_start_.slab_bytes);
  }
}

}  // namespace churnlab
