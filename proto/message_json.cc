#include "proto/message_json.h"

#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "churnlab/v1/spec.pb.h"
#include "churnlab/v1/telemetry.pb.h"

namespace churnlab {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using Json = nlohmann::ordered_json;  // keeps the message's field order

// Which way a walk over a message's JSON rewrites its values.
enum class Direction { kToReader, kToProtobuf };

absl::Status Rewrite(const Descriptor& message, Direction direction, Json& json);
absl::Status RewriteFields(const Descriptor& message, Direction direction, Json& json);

// One value of `field` (an element, for a repeated one).
absl::Status RewriteValue(const FieldDescriptor& field, Direction direction, Json& value) {
  const bool out = direction == Direction::kToReader;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT64:
      if (out && value.is_string()) value = std::stoll(value.get<std::string>());
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_UINT64:
      if (out && value.is_string()) value = std::stoull(value.get<std::string>());
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_ENUM: {
      if (!value.is_string()) return absl::OkStatus();  // a number, or null: protobuf decides
      const EnumDescriptor& type = *field.enum_type();
      if (out) {
        const EnumValueDescriptor* named = type.FindValueByName(value.get<std::string>());
        if (named != nullptr) value = EnumWord(*named);
        return absl::OkStatus();
      }
      absl::StatusOr<int> number = EnumFromWord(type, value.get<std::string>());
      if (!number.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field.name(), ": ", number.status().message()));
      }
      value = type.FindValueByNumber(*number)->name();
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      // Well-known types are strings ("1s") or numbers; Rewrite leaves non-objects alone.
      return Rewrite(*field.message_type(), direction, value);
    default:
      return absl::OkStatus();
  }
}

// The field a JSON key names: its proto name or its JSON name (`max_in_flight`, `maxInFlight`).
const FieldDescriptor* FieldOfKey(const Descriptor& message, const std::string& key) {
  if (const FieldDescriptor* field = message.FindFieldByName(key)) return field;
  for (int i = 0; i < message.field_count(); ++i) {
    if (message.field(i)->json_name() == key) return message.field(i);
  }
  return nullptr;
}

// For a reader: a field whose proto declares its JSON name (TcpStateCounts' "TIME_WAIT") is
// written by that name, and a message that omits zeros loses its 0 fields. Protobuf reads both
// names back.
void RenameForReader(const Descriptor& message, Json& json) {
  const bool omit_zeros = message.options().GetExtension(v1::omit_zeros_in_json);
  bool named = false;
  for (int i = 0; i < message.field_count() && !named; ++i) {
    named = message.field(i)->has_json_name();
  }
  if (!omit_zeros && !named) return;  // most messages: nothing to do, no copy
  Json renamed = Json::object();
  for (auto& [key, value] : json.items()) {
    const FieldDescriptor* field = message.FindFieldByName(key);
    if (omit_zeros && value.is_number() && value == 0) continue;
    bool rename = field != nullptr && field->has_json_name();
    renamed[rename ? field->json_name() : key] = std::move(value);
  }
  json = std::move(renamed);
}

absl::Status Rewrite(const Descriptor& message, Direction direction, Json& json) {
  if (!json.is_object()) return absl::OkStatus();
  absl::Status status = RewriteFields(message, direction, json);
  if (status.ok() && direction == Direction::kToReader) RenameForReader(message, json);
  return status;
}

absl::Status RewriteFields(const Descriptor& message, Direction direction, Json& json) {
  for (auto& [key, value] : json.items()) {
    const FieldDescriptor* field = FieldOfKey(message, key);
    if (field == nullptr || value.is_null()) continue;  // protobuf names unknown keys
    if (field->is_map()) {
      if (!value.is_object()) continue;
      for (auto& [k, item] : value.items()) {
        absl::Status status = RewriteValue(*field->message_type()->map_value(), direction, item);
        if (!status.ok()) return status;
      }
    } else if (field->is_repeated() && value.is_array()) {
      for (Json& item : value) {
        absl::Status status = RewriteValue(*field, direction, item);
        if (!status.ok()) return status;
      }
    } else {
      absl::Status status = RewriteValue(*field, direction, value);
      if (!status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string EnumWord(const EnumValueDescriptor& value) {
  // An unset zero may have the word "" (a run's verdict while it runs): then it is "" too.
  if (value.options().HasExtension(v1::word)) return value.options().GetExtension(v1::word);
  return value.name();
}

std::string EnumWords(const EnumDescriptor& type) {
  std::vector<std::string> words;
  for (int i = 0; i < type.value_count(); ++i) {
    if (type.value(i)->number() != 0) words.push_back(EnumWord(*type.value(i)));
  }
  return absl::StrJoin(words, ", ");
}

absl::StatusOr<int> EnumFromWord(const EnumDescriptor& type, absl::string_view text) {
  for (int i = 0; i < type.value_count(); ++i) {
    const EnumValueDescriptor& value = *type.value(i);
    // The unset zero reads back by its name (a report of an unset choice), or by its word when
    // it has one.
    bool has_word = value.number() != 0 || value.options().HasExtension(v1::word);
    if (value.name() == text || (has_word && EnumWord(value) == text)) {
      return value.number();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not one of ", EnumWords(type)));
}

absl::StatusOr<std::string> EncodeMessageJson(const google::protobuf::Message& message,
                                              bool one_line) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  auto printed = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!printed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(message.GetDescriptor()->name(),
                     " cannot be written as JSON: ", printed.message().as_string()));
  }
  Json json = Json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InternalError(
        absl::StrCat(message.GetDescriptor()->name(), ": protobuf wrote JSON that does not parse"));
  }
  absl::Status rewritten = Rewrite(*message.GetDescriptor(), Direction::kToReader, json);
  if (!rewritten.ok()) return rewritten;
  return json.dump(one_line ? -1 : 2) + (one_line ? "" : "\n");
}

std::string MessageToJson(const google::protobuf::Message& message, bool one_line) {
  absl::StatusOr<std::string> json = EncodeMessageJson(message, one_line);
  if (json.ok()) return *std::move(json);
  Json error = {{"error", std::string(json.status().message())}};
  return error.dump(one_line ? -1 : 2) + (one_line ? "" : "\n");
}

absl::Status ParseMessageJson(absl::string_view text, google::protobuf::Message* message) {
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("not JSON");
  absl::Status words = Rewrite(*message->GetDescriptor(), Direction::kToProtobuf, json);
  if (!words.ok()) return words;
  message->Clear();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  google::protobuf::util::Status status =
      google::protobuf::util::JsonStringToMessage(json.dump(), message, options);
  if (!status.ok()) return absl::InvalidArgumentError(status.message().as_string());
  return absl::OkStatus();
}

}  // namespace churnlab
