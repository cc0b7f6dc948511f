// What passes over the pipes between an agent and the engine processes of a split shard
// (proto/churnlab/v1/engine.proto): snapshots to and from their messages, and each message
// length-delimited (a varint length, then the message), as protobuf's delimited format has it.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/engine_snapshot.h"
#include "churnlab/v1/engine.pb.h"
#include "common/engine_params.h"

namespace churnlab {

// The most an answer (a snapshot: sources and histograms) may take, and the most the part of a
// shard may (CA certificates up to 512 KiB among it): past either the stream is not trusted.
inline constexpr size_t kMaxEngineAnswerBytes = 64 << 20;
inline constexpr size_t kMaxEngineParamsBytes = 4 << 20;
// An order is one write(), atomic on a pipe up to PIPE_BUF (4,096 bytes on Linux): a bitmap of
// kMaxDestinations bits (3,750 bytes) and its framing fit.
inline constexpr size_t kMaxEngineOrderBytes = 4096;

// A destination update as orders (EngineOrder), each at most kMaxEngineOrderBytes: one per
// added address, then the active set.
std::vector<std::string> DestinationOrders(const DestinationUpdate& update);
// Collects those orders on the engine process's side, against a table of `size` entries.
class DestinationOrderReader {
 public:
  explicit DestinationOrderReader(size_t size) : size_(size) {}
  // Takes an add_destination order. False once an order did not follow the last (an index
  // that is not the next, an address that does not parse: one was lost on the way): the
  // process then keeps its destinations for the rest of the run.
  bool Add(const v1::EngineDestination& destination);
  // Takes the active set: the update to apply, or nothing when out of step or the set is empty
  // or names an entry past the table.
  std::optional<DestinationUpdate> Active(absl::string_view bits);
  // The engine refused the last update: nothing after it applies.
  void OutOfStep() { in_step_ = false; }

 private:
  size_t size_;  // the table's size once the update so far is applied
  DestinationUpdate pending_;
  bool in_step_ = true;
};

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
