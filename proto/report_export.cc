#include "proto/report_export.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace churnlab {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
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
