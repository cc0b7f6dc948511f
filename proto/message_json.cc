#include "proto/message_json.h"

#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "churnlab/v1/spec.pb.h"
#include "proto/json_writer.h"

namespace churnlab {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using Json = nlohmann::ordered_json;  // keeps the message's field order

// Turns the words in a message's JSON into the names protobuf's parser reads: enum words
// ("client-fin") into their names (CLOSE_POLICY_CLIENT_FIN), through nested messages.
absl::Status WordsToNames(const Descriptor& message, Json& json);

// One value of `field` (an element, for a repeated one).
absl::Status WordToName(const FieldDescriptor& field, Json& value) {
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_ENUM: {
      if (!value.is_string()) return absl::OkStatus();  // a number, or null: protobuf decides
      const EnumDescriptor& type = *field.enum_type();
      absl::StatusOr<int> number = EnumFromWord(type, value.get<std::string>());
      if (!number.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field.name(), ": ", number.status().message()));
      }
      value = type.FindValueByNumber(*number)->name();
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      // Well-known types are strings ("1s") or numbers; WordsToNames leaves non-objects alone.
      return WordsToNames(*field.message_type(), value);
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

absl::Status WordsToNames(const Descriptor& message, Json& json) {
  if (!json.is_object()) return absl::OkStatus();
  for (auto& [key, value] : json.items()) {
    const FieldDescriptor* field = FieldOfKey(message, key);
    if (field == nullptr || value.is_null()) continue;  // protobuf names unknown keys
    if (field->is_map()) {
      if (!value.is_object()) continue;
      for (auto& [k, item] : value.items()) {
        absl::Status status = WordToName(*field->message_type()->map_value(), item);
        if (!status.ok()) return status;
      }
    } else if (field->is_repeated() && value.is_array()) {
      for (Json& item : value) {
        absl::Status status = WordToName(*field, item);
        if (!status.ok()) return status;
      }
    } else {
      absl::Status status = WordToName(*field, value);
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
  std::string out;
  absl::Status written = AppendMessageJson(message, one_line, &out);
  if (!written.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        message.GetDescriptor()->name(), " cannot be written as JSON: ", written.message()));
  }
  if (!one_line) out.push_back('\n');
  return out;
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
  absl::Status words = WordsToNames(*message->GetDescriptor(), json);
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
