// API messages as JSON for people and scripts, and back. Two things differ from protobuf's own
// JSON mapping, both for the reader's sake:
//   - 64-bit integers are JSON numbers, not strings (`jq '.totals.failed > 0'` must not be true
//     for "0"); counts stay far below 2^53.
//   - enum values are the words of their `word` option ("client-fin"), not their names
//     ("CLOSE_POLICY_CLIENT_FIN"); the parser accepts either.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace churnlab {

// Any API message as JSON: snake_case keys, zero values included, counts as numbers and choices
// as words; indented, or on one line with `one_line`. ParseMessageJson reads it back.
// A message protobuf cannot encode (a Duration or Timestamp outside its range) gives
// {"error": "..."}, never an empty string; what is stored uses EncodeMessageJson.
std::string MessageToJson(const google::protobuf::Message& message, bool one_line = false);
// The same, with protobuf's refusal as INVALID_ARGUMENT: for what must read back.
absl::StatusOr<std::string> EncodeMessageJson(const google::protobuf::Message& message,
                                              bool one_line = false);

// Parses `json` into `message` (cleared first): protobuf's JSON mapping, plus enum words.
// Unknown fields are refused. INVALID_ARGUMENT naming the field: "close_policy: \"fin\" is not
// one of client-fin, rst, server-fin", or protobuf's own description of the problem.
absl::Status ParseMessageJson(absl::string_view json, google::protobuf::Message* message);

// The word users write for one enum value ("client-fin"); the value's name if it has no word.
std::string EnumWord(const google::protobuf::EnumValueDescriptor& value);
// The value of `type` whose word (or name) is `text`; INVALID_ARGUMENT listing the words. The
// unset zero (PROTOCOL_UNSPECIFIED) is read by its name only.
absl::StatusOr<int> EnumFromWord(const google::protobuf::EnumDescriptor& type,
                                 absl::string_view text);
// "client-fin, rst, server-fin": the words of every value but the unspecified zero.
std::string EnumWords(const google::protobuf::EnumDescriptor& type);

// The word of a generated enum's value: Word(v1::RunReport::STATE_COMPLETED) is "completed".
template <typename Enum>
std::string Word(Enum value) {
  const google::protobuf::EnumValueDescriptor* d =
      google::protobuf::GetEnumDescriptor<Enum>()->FindValueByNumber(value);
  return d == nullptr ? std::to_string(static_cast<int>(value)) : EnumWord(*d);
}

}  // namespace churnlab
