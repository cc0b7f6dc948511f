// A point-in-time copy of an engine's counters, taken without stopping it. Two snapshots diff
// into the activity of the interval between them (the per-second telemetry).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/outcome.h"
#include "common/histogram.h"
#include "common/net_address.h"

namespace churnlab {

struct SourceSnapshot {
  // The source IP; an empty address (AF_UNSPEC) when the kernel picks it (bind mode none).
  SocketAddress source;
  OutcomeCounts counts;
};

// How telemetry and reports name a source: its IP, or "auto" when the kernel picks it.
std::string SourceName(const SocketAddress& source);
// The other way, for a name that crossed a pipe: INVALID_ARGUMENT when it is neither.
absl::StatusOr<SocketAddress> SourceOfName(absl::string_view name);

// HTTP status codes counted one by one: 100..599.
inline constexpr int kMinStatusCode = 100;
inline constexpr int kStatusCodes = 500;

struct EngineSnapshot {
  int64_t elapsed_nanos = 0;  // since the run's start
  // Open model: starts that were due while max_in_flight connections were open, so skipped.
  uint64_t missed_starts = 0;
  // Open model: starts due longer ago than the connect timeout when the loop came to them (slow
  // connect() calls, a stopped or starved process), so skipped rather than made late.
  uint64_t late_starts = 0;
  uint64_t in_flight = 0;  // a gauge: connections open now (not diffed)
  uint64_t held = 0;       // a gauge: of those, held open after their exchanges (spec `hold`)
  // Gauges of a shard split over engine processes (agent/engine_processes.h), 0 otherwise: how
  // many, and how many were lost (no answer in time, so killed, or died); a lost one's counts
  // are those of its last answer.
  uint32_t processes = 0;
  uint32_t processes_lost = 0;
  std::vector<SourceSnapshot> sources;
  Histogram connect_latency;  // connect() to the handshake completing, ns
  // TLS: the TCP handshake's end to the TLS handshake's, successful ones, ns.
  Histogram tls_handshake;
  // http and https: responses by status code (kMinStatusCode..+kStatusCodes), non-zero only.
  std::map<int, uint64_t> status_codes;
  Histogram connection_latency;  // socket() to close(), successful connections, ns
  Histogram start_lateness;      // actual start minus intended start (open model), ns
  // socket() through connect() returning, every attempt that got that far: the kernel's search
  // for a free port, which grows as the port range fills, ns.
  Histogram connect_call;
  // Per loop pass, how long the loop did not look at the kernel (its own work, oversleeping, a
  // stop): latencies can include up to this much of the engine's own delay, ns.
  Histogram loop_lag;

  // Counts over all sources.
  OutcomeCounts Total() const;
  // What happened after `earlier`, a snapshot of the same run; in_flight stays this one's.
  EngineSnapshot Since(const EngineSnapshot& earlier) const;
  // Adds another engine's (or thread's) snapshot of the same sources: elapsed is the larger.
  void Merge(const EngineSnapshot& other);
};

}  // namespace churnlab
