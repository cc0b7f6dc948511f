// How the CLI shows runs: the progress line, the summary table, JSON and CSV.
#pragma once

#include <string>
#include <vector>

#include "churnlab/v1/control.pb.h"
#include "churnlab/v1/report.pb.h"

namespace churnlab {

// One line for the newest point of a running run's update.
std::string FormatProgressLine(const v1::RunReport& report);
// The end-of-run summary: totals, per agent and source, errors, latency, thresholds, verdict.
std::string FormatReportText(const v1::RunReport& report);
// The tuple budget beside the requested and achieved rates, per source IP.
std::string FormatTupleBudget(const v1::RunReport& report);
// Held connections: the peak per source and in total, memory per connection, the limiter and
// the projection; "" when the report has none.
std::string FormatConcurrency(const v1::RunReport& report);
// `churnlab compare`'s side-by-side table and summary.
std::string FormatCompare(const v1::CompareReport& compare);
// Several runs, one row each (`churnlab report A B ...`), then why each one's verdict is what it
// is. The table fits 100 columns.
std::string FormatReportsText(const std::vector<v1::RunReport>& reports);
std::string FormatAgents(const std::vector<v1::AgentInfo>& agents);
std::string FormatRuns(const std::vector<v1::RunSummary>& runs);

}  // namespace churnlab
