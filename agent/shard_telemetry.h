// Builds the telemetry of a running shard: the engine's counters plus what the kernel says about
// the shard's source IPs (ports in use, TCP states, peaks) and the host (counter deltas since
// the shard started, socket totals).
#pragma once

#include <future>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agent/engine_snapshot.h"
#include "churnlab/v1/telemetry.pb.h"
#include "common/clock.h"
#include "host/process_memory.h"
#include "host/socket_census.h"

namespace churnlab {

class ShardTelemetryCollector {
 public:
  // Takes the kernel counters' baseline now. `clock` paces the census.
  ShardTelemetryCollector(std::string run_id, std::vector<SocketAddress> targets,
                          uint64_t port_range_size, Clock& clock = SystemClock());

  // The cumulative telemetry for `snapshot`; peaks are the largest seen over all calls. The
  // socket census is retaken when due, in the background: it costs about 0.5 us of CPU per
  // socket on the host, so on a host with many sockets it is spaced out to about 1% of one core
  // by its own CPU time (a busy host stretches its wall time, not its cost), at most 30 s apart
  // (and always retaken for the final message).
  v1::ShardTelemetry Collect(const EngineSnapshot& snapshot, bool final);
  // What the host held before the start (TakeSocketCensus, TakeRangeUse): in every message.
  void SetPortsAtStart(const absl::StatusOr<SocketCensus>& toward_targets,
                       const absl::StatusOr<RangeUse>& range);
  // The destination table (`names[i]` for `targets[i]`, "" for an IP literal), again whenever a
  // lookup grew it: the census counts sockets toward every entry, and every message lists each
  // name with the addresses it was used at (kMaxReportedAddresses, and how many in all).
  void SetDestinations(const std::vector<SocketAddress>& targets,
                       const std::vector<std::string>& names);
  // Each name's lookups so far ("host:port", the first one included) and the later ones that
  // failed.
  void SetLookups(const std::string& name, uint32_t lookups, uint32_t failed);
  ~ShardTelemetryCollector();
  // The next census's delay after the last one's start: 100 x its CPU cost, within 0.95-30 s.
  int64_t census_gap_nanos() const { return next_census_ - census_started_; }

 private:
  struct Peaks {
    uint64_t ports_in_use = 0;
    uint64_t time_wait = 0;
    uint64_t fin_wait2 = 0;
    uint64_t established = 0;
  };
  // Called with a fresh census: keeps the shard's memory and the kernel's slab growth when
  // `established` is the most connections held so far.
  void AddMemory(uint64_t established);
  google::protobuf::RepeatedPtrField<v1::ResolvedTarget> resolved_;
  void AddSockets(const SourceSockets& sockets, v1::SourceCounts* out);
  // Takes in a census done in the background (true if one was), starts the next when due.
  bool UpdateCensus(bool final);

  std::string run_id_;
  Clock& clock_;
  std::vector<SocketAddress> targets_;
  uint64_t port_range_size_;
  std::map<std::string, int64_t> baseline_;
  uint64_t conntrack_peak_ = 0;
  std::map<std::string, Peaks> peaks_;
  absl::StatusOr<SocketCensus> census_ = absl::UnavailableError("no census yet");
  HostTcpStates host_states_{};  // as of the last whole-host census
  int census_count_ = 0;
  int64_t next_census_ = 0;  // clock_ nanos; 0: at once
  std::future<absl::StatusOr<SocketCensus>> pending_;
  HostTcpStates pending_host_states_{};  // written by the pending census only
  int64_t census_started_ = 0;           // clock_ nanos
  int64_t census_taken_at_ = -1;         // clock_ nanos when census_ was started; -1: none yet
  int64_t pending_cost_ = 0;  // CPU nanos the census used, written by the pending census only
  uint64_t peak_in_flight_ = 0;
  HostMemory memory_at_start_ = ReadHostMemory();
  // The processes' PSS before the first connection (made after the engine, before its start).
  uint64_t pss_at_start_ = SelfAndChildrenMemory().pss_bytes;
  uint64_t peak_established_ = 0;
  v1::ShardMemory memory_;                // as of the most established connections seen
  std::optional<SocketCensus> at_start_;  // sources' sockets toward the targets before the run
  std::optional<RangeUse> range_at_start_;
};

// The cumulative telemetry of a shard from its engine's snapshot alone (no kernel figures).
// What a census of the port range says, as telemetry and the hello carry it.
v1::PortsAtStart PortsAtStartOf(const RangeUse& range);

v1::ShardTelemetry SnapshotToTelemetry(const EngineSnapshot& snapshot, const std::string& run_id,
                                       bool final);

}  // namespace churnlab
