// Human-readable text for an engine run: the one-line-per-second progress and the final summary.
#pragma once

#include <string>

#include "agent/engine_snapshot.h"
#include "common/engine_params.h"

namespace churnlab {

// "850us", "12.3ms", "1.20s".
std::string FormatNanos(int64_t nanos);
// The largest failure cells first: "connect EADDRNOTAVAIL 812, connect-timeout ETIMEDOUT 3".
std::string FormatFailures(const OutcomeCounts& counts, size_t max_items);
// One progress line from the run so far (`total`) and the last interval (`delta`).
std::string FormatProgress(const EngineParams& params, const EngineSnapshot& total,
                           const EngineSnapshot& delta);
// The end-of-run table: totals, per source IP, failures by phase and errno, latencies.
std::string FormatSummary(const EngineParams& params, const EngineSnapshot& final_snapshot);

}  // namespace churnlab
