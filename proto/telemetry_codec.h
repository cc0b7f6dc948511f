// Histograms to and from their telemetry messages, and what reports make of failures and
// latencies. (An engine snapshot becomes telemetry in agent/shard_telemetry.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "churnlab/v1/report.pb.h"
#include "churnlab/v1/telemetry.pb.h"
#include "common/histogram.h"

namespace churnlab {

void HistogramToProto(const Histogram& h, v1::HistogramData* out);
Histogram HistogramFromProto(const v1::HistogramData& data);

// The `errors` key of a failure: the errno name for failures the kernel reported ("EADDRNOTAVAIL"),
// the phase for outcomes the engine decided ("connect-timeout", "response-timeout", "protocol",
// "stopped"), and "EOF" for a peer that closed too early.
std::string ErrorKey(const v1::FailureCount& failure);

// What no honest agent or observer sends, taken out where telemetry enters the coordinator, so
// that no peer can grow its maps, the report or /metrics (a line per source x state) or wrap a
// total: sources past kMaxTelemetrySources, listeners past kMaxTelemetryListeners, counts above
// kMaxTelemetryCount (clamped to it). (TCP states need no check: TcpStateCounts has a field per
// state the kernel has, and nothing else.) Returns how many entries it dropped or clamped.
inline constexpr int kMaxTelemetrySources = 4096;
inline constexpr int kMaxTelemetryListeners = 64;
// Names a shard's telemetry may list (a spec's targets are at most 1000).
inline constexpr int kMaxResolvedTargets = 1000;
// A name's addresses listed in telemetry and reports (ResolvedTarget.addresses_used counts all).
inline constexpr int kMaxReportedAddresses = 64;
inline constexpr uint64_t kMaxTelemetryCount = uint64_t{1} << 48;
// A failure code is [A-Z0-9_], 1 to this many characters; others become "UNKNOWN" (counted).
inline constexpr size_t kMaxFailureCodeLength = 32;
// A census_age outside 0..kMaxCensusAgeSeconds (or not a valid duration) is dropped, counted.
inline constexpr int64_t kMaxCensusAgeSeconds = 86400;
// engine_processes above this are clamped to it, engine_processes_lost to engine_processes.
inline constexpr uint32_t kMaxEngineProcesses = 4096;
// A census older than this is shown as stale (its age beside the figures), not as current.
inline constexpr double kStaleCensusSeconds = 2;
uint64_t SanitizeTelemetry(v1::ShardTelemetry* telemetry);

// p50/p90/p99/max in milliseconds.
void SummarizeLatency(const Histogram& h, v1::LatencySummary* out);

// The bounds of LatencyHistogram, 8 us to 17 s: eight an octave, (2^k + j * 2^(k-3)) - 1 ns for
// k in [13, 34) and j in [0, 8), then 2^34 - 1; each is the last value of a bucket of the
// log-linear histogram, so that "at most the bound" is exact. At most 12.5% apart, so a
// quantile Prometheus interpolates within one is off by at most about 6%.
const std::vector<int64_t>& LatencyHistogramBoundsNanos();
// Cumulative counts at those bounds, the count and the sum.
void SummarizeHistogram(const Histogram& h, v1::LatencyHistogram* out);

}  // namespace churnlab
