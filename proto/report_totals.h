// How a source's telemetry adds up into a run's report: its row, the run's totals and errors,
// the failures by phase, and what the TLS and HTTP counts come to. The coordinator adds every
// agent's sources this way; churnlab-churn --json its own.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "churnlab/v1/report.pb.h"
#include "churnlab/v1/telemetry.pb.h"
#include "common/histogram.h"

namespace churnlab {

// Failures by (phase, code), summed over sources.
using FailureTotals = std::map<std::pair<v1::FailurePhase, std::string>, uint64_t>;

// Fills `out` from the source's counts and adds them to the report's totals and errors and to
// `failures`. Returns the connections it made (TCP handshakes completed), for requests per
// connection.
uint64_t AddSourceToReport(const v1::SourceCounts& in, uint64_t port_range_size,
                           v1::SourceReport* out, v1::RunReport* report, FailureTotals* failures);
// The report's `failures`, sorted by phase then code.
void AddFailureTotals(const FailureTotals& failures, v1::RunReport* report);
// What the TLS and HTTP counts add up to: the resumed share, responses by class ("2xx").
void AddExchangeTotals(v1::Totals* totals);

// A run's latency histograms, merged over its engines.
struct RunHistograms {
  const Histogram& connect;
  const Histogram& total;
  const Histogram& connect_call;
  const Histogram& loop_lag;
  const Histogram& tls_handshake;
};
// The report's latency section from them (the TLS handshake's only when there was one).
void SummarizeLatencies(const RunHistograms& h, v1::Latency* out);

}  // namespace churnlab
