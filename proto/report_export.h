// Reports and other API messages as users read them outside gRPC: JSON and CSV.
#pragma once

#include <google/protobuf/message.h>

#include <string>

#include "churnlab/v1/report.pb.h"
#include "common/windows_errors.h"

namespace churnlab {

// Any API message as JSON: snake_case keys (protobuf's JSON mapping), zero values included,
// 64-bit counts as JSON numbers (not protobuf's strings); indented, or on one line with
// `one_line`. It parses back with ParseRunSpecJson / protobuf's JSON parser.
std::string MessageToJson(const google::protobuf::Message& message, bool one_line = false);
std::string ReportToJson(const v1::RunReport& report);
// The per-second series as CSV:
// t_s,interval_s,attempted,succeeded,failed,in_flight,connect_p99_ms,connect_call_p99_ms,
// loop_lag_max_ms,errors.
std::string SeriesToCsv(const v1::RunReport& report);

// The table's row (common/windows_errors.h) as the report carries it.
v1::WindowsError WindowsErrorToProto(const WindowsError& error);
// Fills `windows_errors` for each key of the report's `errors` that Windows has a word for.
void AddWindowsErrors(v1::RunReport* report);

}  // namespace churnlab
