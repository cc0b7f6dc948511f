// What passes over the pipes between an agent and the engine processes of a split shard
// (proto/churnlab/v1/engine.proto): snapshots to and from their messages, and each message
// length-delimited (a varint length, then the message), as protobuf's delimited format has it.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "agent/engine_snapshot.h"
#include "churnlab/v1/engine.pb.h"

namespace churnlab {

// The most an answer (a snapshot: sources and histograms) may take, and the most the part of a
// shard may (CA certificates up to 512 KiB among it): past either the stream is not trusted.
inline constexpr size_t kMaxEngineAnswerBytes = 64 << 20;
inline constexpr size_t kMaxEngineParamsBytes = 4 << 20;

v1::EngineSnapshotData SnapshotToProto(const EngineSnapshot& snapshot);
// False when a failure's phase or errno, or a status code, is out of range.
bool SnapshotFromProto(const v1::EngineSnapshotData& data, EngineSnapshot* out);

// `message` as one delimited frame.
std::string DelimitedFrame(const google::protobuf::MessageLite& message);
// Parses the first whole frame of `inbox` into `message` and takes it off: false while it is
// still coming, or with *bad set when its length is past `max_bytes` or it does not parse.
bool TakeDelimited(std::string& inbox, size_t max_bytes, google::protobuf::MessageLite* message,
                   bool* bad);
// Reads one frame from the blocking `fd` (nothing past it): false at EOF, on an error, or for
// a frame past `max_bytes` or one that does not parse.
bool ReadDelimited(int fd, size_t max_bytes, google::protobuf::MessageLite* message);
// Writes all of `bytes` to the blocking `fd`; false when the pipe broke.
bool WriteAll(int fd, absl::string_view bytes);

}  // namespace churnlab
