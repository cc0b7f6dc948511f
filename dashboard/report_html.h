// The self-contained HTML report: one file holding runs' reports (JSON, series included) and
// the dashboard's own drawing code (static/report_charts.js, static/report_view.js) with uPlot
// inlined, all embedded in the binary at build time. The file opens offline, and its
// Content-Security-Policy forbids every request, so it can be mailed or attached to a ticket.
// `churnlab report ID --format=html` and the coordinator's /api/runs/ID/report.html write it.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "churnlab/v1/report.pb.h"

namespace churnlab {

// One report: its run as the dashboard shows it; several: side by side (a column each and
// their main series on shared charts), then each run in full. No report: a page that says so.
std::string ReportsToHtml(const std::vector<v1::RunReport>& reports);

// `text` made safe inside a <script> element: "</script" and "<!--" cannot end or change it.
std::string ScriptSafe(absl::string_view text);

}  // namespace churnlab
