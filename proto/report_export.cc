#include "proto/report_export.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace churnlab {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::util::TimeUtil;
using Json = nlohmann::ordered_json;  // keeps the message's field order

void NumbersIn(const Descriptor* message, Json& json);

// One value of `field` (an element, for a repeated one).
void NumberIn(const FieldDescriptor* field, Json& value) {
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT64:
      if (value.is_string()) value = std::stoll(value.get<std::string>());
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      if (value.is_string()) value = std::stoull(value.get<std::string>());
      return;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      // Well-known types print as strings ("1s"); NumbersIn leaves non-objects alone.
      return NumbersIn(field->message_type(), value);
    default:
      return;
  }
}

void NumbersIn(const Descriptor* message, Json& json) {
  if (!json.is_object()) return;
  for (int i = 0; i < message->field_count(); ++i) {
    const FieldDescriptor* field = message->field(i);
    auto it = json.find(field->name());
    if (it == json.end()) continue;
    if (field->is_map()) {
      const FieldDescriptor* value = field->message_type()->map_value();
      for (auto& [key, item] : it->items()) NumberIn(value, item);
    } else if (field->is_repeated()) {
      for (Json& item : *it) NumberIn(field, item);
    } else {
      NumberIn(field, *it);
    }
  }
}

}  // namespace

// protobuf's JSON mapping writes 64-bit integers as strings ("failed": "0"), for JavaScript's
// sake; for jq (`.totals.failed > 0` is true for "0"), spreadsheets and people they are numbers
// here. Counts stay far below 2^53, and protobuf's parser reads a number or a string alike, so
// reports still parse as the RunReport message.
std::string MessageToJson(const google::protobuf::Message& message, bool one_line) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  Json json = Json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return out;
  NumbersIn(message.GetDescriptor(), json);
  return json.dump(one_line ? -1 : 2) + (one_line ? "" : "\n");
}

std::string ReportToJson(const v1::RunReport& report) { return MessageToJson(report); }

namespace {

// A column name from a failure's phase and code: letters and digits kept, anything else '_'
// ("connect-timeout", "ETIMEDOUT" -> "connect_timeout_ETIMEDOUT").
std::string FailureColumn(const v1::FailureCount& f) {
  std::string name = absl::StrCat(f.phase(), "_", f.code());
  for (char& c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// A field as RFC 4180 has it: quoted when it holds a comma, a quote or a line break.
std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// When the run started, to the nanosecond when the report says (start_time), else to the second
// (started_at, as reports written before start_time have it); nullopt when neither says.
std::optional<absl::Time> RunStart(const v1::RunReport& report) {
  if (report.has_start_time()) {
    return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(report.start_time()));
  }
  absl::Time t;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, report.started_at(), &t, &error)) return t;
  return std::nullopt;
}

}  // namespace

std::string SeriesToCsv(const v1::RunReport& report) {
  // Every failure kind of the run gets a column, in one sorted order for every row.
  std::map<std::string, size_t> columns;
  for (const v1::SeriesPoint& p : report.series()) {
    for (const v1::FailureCount& f : p.failures()) columns.emplace(FailureColumn(f), 0);
  }
  std::string out =
      "t_s,interval_s,attempted,succeeded,failed,in_flight,connect_p99_ms,connect_call_p99_ms,"
      "loop_lag_max_ms,errors,time,unix_s";
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
    absl::StrAppendFormat(&out, "%.3f,%.3f,%d,%d,%d,%d,%.3f,%.3f,%.3f,%s,", p.t_s(), p.interval_s(),
                          p.attempted(), p.succeeded(), p.failed(), p.in_flight(),
                          p.connect_p99_ms(), p.connect_call_p99_ms(), p.loop_lag_max_ms(),
                          CsvField(absl::StrJoin(errors, ";")));
    if (start.has_value()) {
      absl::Time at = *start + absl::Milliseconds(std::llround(p.t_s() * 1e3));
      absl::StrAppend(&out, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", at, absl::UTCTimeZone()), ",",
                      absl::StrFormat("%.3f", absl::ToUnixMillis(at) / 1e3));
    } else {
      out += ",";
    }
    std::vector<uint64_t> counts(columns.size());
    for (const v1::FailureCount& f : p.failures()) counts[columns[FailureColumn(f)]] += f.count();
    for (uint64_t count : counts) absl::StrAppend(&out, ",", count);
    out += "\n";
  }
  return out;
}

}  // namespace churnlab
