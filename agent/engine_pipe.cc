#include "agent/engine_pipe.h"

#include <errno.h>
#include <google/protobuf/io/coded_stream.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "common/bit_bytes.h"
#include "proto/telemetry_codec.h"

namespace churnlab {
namespace {

// The varint at the front of `bytes`: its value and length; length 0 while it is cut short, -1
// when it runs past 10 bytes.
std::pair<uint64_t, int> Varint(absl::string_view bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 10; ++i) {
    if (static_cast<size_t>(i) >= bytes.size()) return {0, 0};
    uint8_t b = static_cast<uint8_t>(bytes[i]);
    value |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) return {value, i + 1};
  }
  return {0, -1};
}

// Reads exactly `size` bytes from the blocking `fd`; false at EOF or on an error.
bool ReadExactly(int fd, char* data, size_t size) {
  while (size > 0) {
    ssize_t n = read(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

v1::EngineSnapshotData SnapshotToProto(const EngineSnapshot& s) {
  v1::EngineSnapshotData out;
  out.set_elapsed_nanos(s.elapsed_nanos);
  out.set_missed_starts(s.missed_starts);
  out.set_late_starts(s.late_starts);
  out.set_in_flight(s.in_flight);
  out.set_held(s.held);
  for (const SourceSnapshot& source : s.sources) {
    v1::EngineSourceData* d = out.add_sources();
    d->set_source(SourceName(source.source));
    d->set_attempted(source.counts.attempted);
    d->set_succeeded(source.counts.succeeded);
    d->set_requests(source.counts.requests);
    d->set_tls_full(source.counts.tls_full);
    d->set_tls_resumed(source.counts.tls_resumed);
    source.counts.ForEachFailure([&](Phase phase, int code, uint64_t count) {
      v1::EngineFailureCell* cell = d->add_failures();
      cell->set_phase(static_cast<uint32_t>(phase));
      cell->set_code(code);
      cell->set_count(count);
    });
  }
  HistogramToProto(s.connect_latency, out.mutable_connect_latency());
  HistogramToProto(s.tls_handshake, out.mutable_tls_handshake());
  HistogramToProto(s.connection_latency, out.mutable_connection_latency());
  HistogramToProto(s.start_lateness, out.mutable_start_lateness());
  HistogramToProto(s.connect_call, out.mutable_connect_call());
  HistogramToProto(s.loop_lag, out.mutable_loop_lag());
  for (const auto& [code, n] : s.status_codes) (*out.mutable_status_codes())[code] = n;
  return out;
}

bool SnapshotFromProto(const v1::EngineSnapshotData& d, EngineSnapshot* out) {
  EngineSnapshot s;
  s.elapsed_nanos = d.elapsed_nanos();
  s.missed_starts = d.missed_starts();
  s.late_starts = d.late_starts();
  s.in_flight = d.in_flight();
  s.held = d.held();
  for (const v1::EngineSourceData& source : d.sources()) {
    SourceSnapshot& to = s.sources.emplace_back();
    absl::StatusOr<SocketAddress> address = SourceOfName(source.source());
    if (!address.ok()) return false;
    to.source = *address;
    to.counts.attempted = source.attempted();
    to.counts.succeeded = source.succeeded();
    to.counts.requests = source.requests();
    to.counts.tls_full = source.tls_full();
    to.counts.tls_resumed = source.tls_resumed();
    for (const v1::EngineFailureCell& cell : source.failures()) {
      if (cell.phase() >= kPhaseCount || cell.code() < 0 || cell.code() >= kErrnoSlots) {
        return false;
      }
      to.counts.failures.Add(static_cast<Phase>(cell.phase()), cell.code(), cell.count());
    }
  }
  s.connect_latency = HistogramFromProto(d.connect_latency());
  s.tls_handshake = HistogramFromProto(d.tls_handshake());
  s.connection_latency = HistogramFromProto(d.connection_latency());
  s.start_lateness = HistogramFromProto(d.start_lateness());
  s.connect_call = HistogramFromProto(d.connect_call());
  s.loop_lag = HistogramFromProto(d.loop_lag());
  for (const auto& [code, n] : d.status_codes()) {
    if (code < kMinStatusCode || code >= kMinStatusCode + kStatusCodes) return false;
    s.status_codes[code] = n;
  }
  *out = std::move(s);
  return true;
}

std::string DelimitedFrame(const google::protobuf::MessageLite& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.WriteVarint32(static_cast<uint32_t>(message.ByteSizeLong()));
    message.SerializeWithCachedSizes(&coded);
  }
  return out;
}

bool TakeDelimited(std::string& inbox, size_t max_bytes, google::protobuf::MessageLite* message,
                   bool* bad) {
  auto [length, header] = Varint(inbox);
  *bad = header < 0 || length > max_bytes;
  if (*bad || header == 0 || inbox.size() < header + length) return false;
  *bad = !message->ParseFromArray(inbox.data() + header, static_cast<int>(length));
  inbox.erase(0, header + length);
  return !*bad;
}

bool ReadDelimited(int fd, size_t max_bytes, google::protobuf::MessageLite* message) {
  std::string header;
  std::pair<uint64_t, int> length{0, 0};
  while (length.second == 0) {
    char byte;
    if (!ReadExactly(fd, &byte, 1)) return false;
    header.push_back(byte);
    length = Varint(header);
  }
  if (length.second < 0 || length.first > max_bytes) return false;
  std::string body(length.first, '\0');
  return ReadExactly(fd, body.data(), body.size()) && message->ParseFromString(body);
}

bool WriteAll(int fd, absl::string_view bytes) {
  const char* data = bytes.data();
  size_t size = bytes.size();
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

std::vector<std::string> DestinationOrders(const DestinationUpdate& update) {
  std::vector<std::string> orders;
  for (size_t i = 0; i < update.added.size(); ++i) {
    v1::EngineOrder order;
    v1::EngineDestination* d = order.mutable_add_destination();
    d->set_index(static_cast<uint32_t>(update.first + i));
    d->set_address(update.added[i].ToString());
    d->set_name(update.added_names[i]);
    orders.push_back(DelimitedFrame(order));
  }
  std::string bits;
  for (uint32_t i : update.active) SetBit(&bits, i);
  v1::EngineOrder active;
  active.set_active_destinations(std::move(bits));
  orders.push_back(DelimitedFrame(active));
  return orders;
}

bool DestinationOrderReader::Add(const v1::EngineDestination& destination) {
  absl::StatusOr<SocketAddress> address = SocketAddress::ParseIpPort(destination.address());
  in_step_ = in_step_ && address.ok() && destination.index() == size_ + pending_.added.size();
  if (!in_step_) return false;
  pending_.added.push_back(*address);
  pending_.added_names.push_back(destination.name());
  return true;
}

std::optional<DestinationUpdate> DestinationOrderReader::Active(absl::string_view bits) {
  if (!in_step_) return std::nullopt;
  DestinationUpdate update = std::exchange(pending_, {});
  update.first = static_cast<uint32_t>(size_);
  const size_t size = size_ + update.added.size();
  for (size_t i = 0; i < bits.size() * 8; ++i) {
    if (!BitAt(bits, i)) continue;
    if (i >= size) {
      in_step_ = false;
      return std::nullopt;
    }
    update.active.push_back(static_cast<uint32_t>(i));
  }
  if (update.active.empty()) {
    in_step_ = false;
    return std::nullopt;
  }
  size_ = size;
  return update;
}

}  // namespace churnlab
