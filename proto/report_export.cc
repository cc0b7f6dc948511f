#include "proto/report_export.h"

#include <google/protobuf/util/time_util.h>

#include <cmath>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "proto/message_json.h"

namespace churnlab {

using google::protobuf::util::TimeUtil;

std::string ReportToJson(const v1::RunReport& report) { return MessageToJson(report); }

namespace {

// A column name from a failure's phase and code: letters and digits kept, anything else '_'
// ("connect-timeout", "ETIMEDOUT" -> "connect_timeout_ETIMEDOUT").
std::string FailureColumn(const v1::FailureCount& f) {
  std::string name = absl::StrCat(Word(f.phase()), "_", f.code());
  for (char& c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// A field as RFC 4180 has it: quoted when it holds a comma, a quote or a line break. One that
// begins with = + - @ (or a tab or CR) would be a formula to a spreadsheet (=HYPERLINK(...)):
// it gets a leading ' (OWASP's advice for CSV injection).
std::string CsvField(const std::string& raw) {
  bool formula =
      !raw.empty() && std::string_view("=+-@\t\r").find(raw[0]) != std::string_view::npos;
  std::string value = formula ? absl::StrCat("'", raw) : raw;
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// A latency in ms, or an empty cell where the interval had no sample to measure (its histogram
// empty: every real sample is 1 ns or more), not a 0.000 that reads as the best of all.
std::string Ms(double ms) { return ms > 0 ? absl::StrFormat("%.3f", ms) : ""; }

}  // namespace

std::optional<absl::Time> RunStart(const v1::RunReport& report) {
  if (report.has_start_time()) {
    return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(report.start_time()));
  }
  absl::Time t;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, report.started_at(), &t, &error)) return t;
  return std::nullopt;
}

std::string SeriesToCsv(const v1::RunReport& report) {
  // Every failure kind of the run gets a column, in one sorted order for every row.
  std::map<std::string, size_t> columns;
  for (const v1::SeriesPoint& p : report.series()) {
    for (const v1::FailureCount& f : p.failures()) columns.emplace(FailureColumn(f), 0);
  }
  std::string out =
      "t_s,interval_s,attempted,succeeded,failed,in_flight,connect_call_p99_ms,loop_lag_max_ms,"
      "errors,time,unix_s";
  // Then each latency's percentiles in the interval, and its TLS handshakes.
  for (const char* part : {"connect", "total", "tls_handshake"}) {
    for (const char* q : {"p50", "p90", "p99", "p999"}) {
      absl::StrAppend(&out, ",", part, "_", q, "_ms");
    }
  }
  out += ",tls_full,tls_resumed";
  size_t next = 0;
  for (auto& [name, index] : columns) {
    index = next++;
    absl::StrAppend(&out, ",", name);
  }
  out += "\n";
  const std::optional<absl::Time> start = RunStart(report);
  for (const v1::SeriesPoint& p : report.series()) {
    std::map<std::string, uint64_t> sorted(p.errors().begin(), p.errors().end());
    std::vector<std::string> errors;
    for (const auto& [key, count] : sorted) errors.push_back(absl::StrCat(key, "=", count));
    absl::StrAppendFormat(&out, "%.3f,%.3f,%d,%d,%d,%d,%s,%s,%s,", p.t_s(), p.interval_s(),
                          p.attempted(), p.succeeded(), p.failed(), p.in_flight(),
                          Ms(p.connect_call_p99_ms()), Ms(p.loop_lag_max_ms()),
                          CsvField(absl::StrJoin(errors, ";")));
    if (start.has_value()) {
      absl::Time at = *start + absl::Milliseconds(std::llround(p.t_s() * 1e3));
      absl::StrAppend(&out, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", at, absl::UTCTimeZone()), ",",
                      absl::StrFormat("%.3f", absl::ToUnixMillis(at) / 1e3));
    } else {
      out += ",";
    }
    for (double ms : {p.connect_p50_ms(), p.connect_p90_ms(), p.connect_p99_ms(),
                      p.connect_p999_ms(), p.total_p50_ms(), p.total_p90_ms(), p.total_p99_ms(),
                      p.total_p999_ms(), p.tls_handshake_p50_ms(), p.tls_handshake_p90_ms(),
                      p.tls_handshake_p99_ms(), p.tls_handshake_p999_ms()}) {
      absl::StrAppend(&out, ",", Ms(ms));
    }
    absl::StrAppendFormat(&out, ",%d,%d", p.tls_full(), p.tls_resumed());
    std::vector<uint64_t> counts(columns.size());
    for (const v1::FailureCount& f : p.failures()) counts[columns[FailureColumn(f)]] += f.count();
    for (uint64_t count : counts) absl::StrAppend(&out, ",", count);
    out += "\n";
  }
  return out;
}

std::pair<std::string, uint64_t> TopError(const v1::RunReport& report) {
  std::pair<std::string, uint64_t> top = {"", 0};
  for (const auto& [error, count] : report.errors()) {
    if (count > top.second || (count == top.second && count > 0 && error < top.first)) {
      top = {error, count};
    }
  }
  return top;
}

std::string RunsToJson(const std::vector<v1::RunReport>& reports) {
  std::string out = "{\"runs\": [";
  for (size_t i = 0; i < reports.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? ",\n" : "\n", ReportToJson(reports[i]));
  }
  return out + "\n]}\n";
}

std::string RunsToCsv(const std::vector<v1::RunReport>& reports) {
  std::string out =
      "run_id,name,state,verdict,started_at,duration_s,requested_rate,achieved_rate,attempted,"
      "succeeded,failed,error_rate,tuple_budget_rate";
  for (const char* part : {"connect", "total", "tls_handshake"}) {
    for (const char* q : {"p50", "p90", "p99", "max"})
      absl::StrAppend(&out, ",", part, "_", q, "_ms");
  }
  out += ",tls_full,tls_resumed,top_error\n";
  for (const v1::RunReport& r : reports) {
    const v1::Totals& t = r.totals();
    absl::StrAppendFormat(
        &out, "%s,%s,%s,%s,%s,%.3f,%.3f,%.3f,%d,%d,%d,%.6f,%.3f", CsvField(r.run_id()),
        CsvField(r.spec().name()), Word(r.state()), Word(r.verdict()), CsvField(r.started_at()),
        r.duration_s(), r.requested_rate(), r.achieved_rate(), t.attempted(), t.succeeded(),
        t.failed(), t.attempted() > 0 ? static_cast<double>(t.failed()) / t.attempted() : 0,
        r.tuple_budget().total_rate());
    for (const v1::LatencySummary* l :
         {&r.latency().connect(), &r.latency().total(), &r.latency().tls_handshake()}) {
      absl::StrAppendFormat(&out, ",%.3f,%.3f,%.3f,%.3f", l->p50_ms(), l->p90_ms(), l->p99_ms(),
                            l->max_ms());
    }
    const auto [top, most] = TopError(r);
    absl::StrAppend(&out, ",", t.tls_full(), ",", t.tls_resumed(), ",",
                    CsvField(most > 0 ? absl::StrCat(top, "=", most) : ""), "\n");
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
