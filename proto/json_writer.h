// Writes an API message as the JSON message_json.h describes, straight from the message into
// the output string. Protobuf's own printer (serialise, re-read as a stream, print) followed by
// a document tree to turn its names into words held about twelve times the text at once: a
// report of 122,880 sources peaked at 1.2 GB while it was encoded. This holds the text.
#pragma once

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"

namespace churnlab {

// Appends `message` to `*out`: snake_case keys (a field's declared json_name where it has one),
// every field in declaration order (scalars with their zeros, except in a message with the
// omit_zeros_in_json option; a message, oneof or optional field only when set), repeated
// fields as arrays, maps as objects sorted by key, 64-bit integers as numbers, enum values as
// their words, Duration and Timestamp as protobuf writes them ("1.500s",
// "2026-12-07T05:00:00Z"), bytes as base64, NaN and infinities as "NaN", "Infinity".
// Bytes of a string that are not UTF-8 are written as U+FFFD. Indented by two spaces per level,
// or on one line. INVALID_ARGUMENT for a Duration or Timestamp outside protobuf's range (then
// `*out` holds a partial text).
absl::Status AppendMessageJson(const google::protobuf::Message& message, bool one_line,
                               std::string* out);

}  // namespace churnlab
