// A strict first pass over JSON meant for a protobuf message, before protobuf's own JSON parser
// sees it: that parser takes the last of duplicate keys (`{"rate":1,"rate":1e6}` ran at 1e6),
// and flattens arrays nested in a repeated field (a 200,000-deep `[[...]]` ran). This pass reads
// the text with nlohmann::json's SAX parser (iterative, so depth costs no stack) and holds it to
// the message's shape.
#pragma once

#include <google/protobuf/descriptor.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace churnlab {

// Deeper than this is refused before anything is built (RunSpec needs 2: object, list).
inline constexpr int kMaxJsonDepth = 8;

// OK when `json` is one JSON object that fits `message`'s shape; otherwise INVALID_ARGUMENT:
//   - "FIELD: given twice ..." for a key repeated in one object, also when it is written once as
//     `max_in_flight` and once as `maxInFlight`;
//   - "FIELD: an array inside the list ..." / "FIELD: an array (or object) where one value
//     belongs ...": a value whose kind does not fit the field (null is fine anywhere);
//   - "spec: nested deeper than 8 levels", "spec: not JSON at byte N: ...".
// Keys that name no field pass: protobuf's parser refuses them, naming them.
absl::Status CheckJsonShape(absl::string_view json, const google::protobuf::Descriptor& message);

}  // namespace churnlab
