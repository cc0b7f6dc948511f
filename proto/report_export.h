// Reports and other API messages as users read them outside gRPC: JSON and CSV.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "churnlab/v1/report.pb.h"
#include "common/windows_errors.h"
#include "proto/message_json.h"  // MessageToJson, which ReportToJson is

namespace churnlab {

std::string ReportToJson(const v1::RunReport& report);
// When the run started: start_time, to the nanosecond; for reports stored before it existed,
// started_at (the RFC 3339 words kept for people and scripts), to the second; nullopt when
// neither says. Code reads the start here, never from the words.
std::optional<absl::Time> RunStart(const v1::RunReport& report);
// The per-second series as CSV, one row per point, counts for the point's interval:
//   t_s,interval_s,attempted,succeeded,failed,in_flight,connect_p99_ms,connect_call_p99_ms,
//   loop_lag_max_ms,errors,time,unix_s,PHASE_CODE...
// t_s is seconds after the run's start; time (RFC 3339, UTC, milliseconds) and unix_s are the
// same instant on the wall clock. `errors` packs the errno counts ("ECONNREFUSED=3;..."); then
// one column per phase and errno that the run saw (connect_EADDRNOTAVAIL, connect_timeout_
// ETIMEDOUT, read_ECONNRESET, ...: non-alphanumerics become '_'), sorted by name. Runs recorded
// before points carried phases have no such columns.
std::string SeriesToCsv(const v1::RunReport& report);

// Several runs for comparing them (`churnlab report A B ... --format=json|csv`): JSON as
// {"runs": [report, ...]} in the order given; CSV as one row per run with its verdict, counts,
// rates and every latency summary (p50, p90, p99, max of connect, total and the TLS handshake):
//   run_id,name,state,verdict,started_at,duration_s,requested_rate,achieved_rate,attempted,
//   succeeded,failed,error_rate,tuple_budget_rate,connect_p50_ms,...,tls_handshake_max_ms,
//   tls_full,tls_resumed,top_error
std::string RunsToJson(const std::vector<v1::RunReport>& reports);
// The run's most frequent error and its count (the first by name among equals); {"", 0} for none.
std::pair<std::string, uint64_t> TopError(const v1::RunReport& report);
std::string RunsToCsv(const std::vector<v1::RunReport>& reports);

// The table's row (common/windows_errors.h) as the report carries it.
v1::WindowsError WindowsErrorToProto(const WindowsError& error);
// Fills `windows_errors` for each key of the report's `errors` that Windows has a word for.
void AddWindowsErrors(v1::RunReport* report);

}  // namespace churnlab
