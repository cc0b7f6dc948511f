// Histograms to and from their telemetry messages, and what reports make of failures and
// latencies. (An engine snapshot becomes telemetry in agent/shard_telemetry.)
#pragma once

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

// p50/p90/p99/max in milliseconds.
void SummarizeLatency(const Histogram& h, v1::LatencySummary* out);

// The bounds of LatencyHistogram: 2^k - 1 ns for k in [13, 34], the last value of a bucket of
// the log-linear histogram, so that "at most the bound" is exact.
const std::vector<int64_t>& LatencyHistogramBoundsNanos();
// Cumulative counts at those bounds, the count and the sum.
void SummarizeHistogram(const Histogram& h, v1::LatencyHistogram* out);

}  // namespace churnlab
