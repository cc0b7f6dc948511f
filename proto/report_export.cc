#include "proto/report_export.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "proto/message_json.h"

namespace churnlab {

std::string ReportToJson(const v1::RunReport& report) { return MessageToJson(report); }

std::string SeriesToCsv(const v1::RunReport& report) {
  std::string out =
      "t_s,interval_s,attempted,succeeded,failed,in_flight,connect_p99_ms,connect_call_p99_ms,"
      "loop_lag_max_ms,errors\n";
  for (const v1::SeriesPoint& p : report.series()) {
    std::map<std::string, uint64_t> sorted(p.errors().begin(), p.errors().end());
    std::vector<std::string> errors;
    for (const auto& [key, count] : sorted) errors.push_back(absl::StrCat(key, "=", count));
    absl::StrAppendFormat(&out, "%.3f,%.3f,%d,%d,%d,%d,%.3f,%.3f,%.3f,%s\n", p.t_s(),
                          p.interval_s(), p.attempted(), p.succeeded(), p.failed(), p.in_flight(),
                          p.connect_p99_ms(), p.connect_call_p99_ms(), p.loop_lag_max_ms(),
                          absl::StrJoin(errors, ";"));
  }
  return out;
}

v1::WindowsError WindowsErrorToProto(const WindowsError& error) {
  v1::WindowsError out;
  out.set_code(error.code);
  out.set_name(std::string(error.name));
  out.set_message(std::string(error.message));
  out.set_dotnet_name(std::string(error.dotnet));
  return out;
}

void AddWindowsErrors(v1::RunReport* report) {
  report->clear_windows_errors();
  for (const auto& [key, count] : report->errors()) {
    if (const WindowsError* windows = WindowsErrorFor(key)) {
      (*report->mutable_windows_errors())[key] = WindowsErrorToProto(*windows);
    }
  }
}

}  // namespace churnlab
