#include "agent/engine_snapshot_codec.h"

#include <cstring>
#include <utility>
#include <vector>

namespace churnlab {
namespace {

void Put(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), 8); }

void PutHistogram(std::string* out, const Histogram& h) {
  std::vector<std::pair<int, uint64_t>> buckets;
  for (int i = 0; i < Histogram::kBuckets; ++i) {
    if (h.bucket_count(i) != 0) buckets.emplace_back(i, h.bucket_count(i));
  }
  Put(out, buckets.size());
  for (const auto& [index, count] : buckets) {
    Put(out, static_cast<uint64_t>(index));
    Put(out, count);
  }
  Put(out, static_cast<uint64_t>(h.sum()));
  Put(out, static_cast<uint64_t>(h.min()));
  Put(out, static_cast<uint64_t>(h.max()));
}

class Reader {
 public:
  explicit Reader(absl::string_view bytes) : bytes_(bytes) {}
  bool ok() const { return ok_; }
  uint64_t Get() {
    uint64_t v = 0;
    if (bytes_.size() < 8) {
      ok_ = false;
      return 0;
    }
    std::memcpy(&v, bytes_.data(), 8);
    bytes_.remove_prefix(8);
    return v;
  }
  std::string GetString() {
    uint64_t n = Get();
    if (n > bytes_.size()) ok_ = false;
    if (!ok_) return "";
    std::string s(bytes_.substr(0, n));
    bytes_.remove_prefix(n);
    return s;
  }
  Histogram GetHistogram() {
    uint64_t n = Get();
    std::vector<std::pair<int, uint64_t>> buckets;
    for (uint64_t i = 0; i < n && ok_; ++i) {
      int index = static_cast<int>(Get());
      buckets.emplace_back(index, Get());
    }
    int64_t sum = static_cast<int64_t>(Get());
    int64_t min = static_cast<int64_t>(Get());
    int64_t max = static_cast<int64_t>(Get());
    return Histogram::FromParts(buckets, sum, min, max);
  }

 private:
  absl::string_view bytes_;
  bool ok_ = true;
};

}  // namespace

std::string EncodeSnapshot(const EngineSnapshot& s) {
  std::string out;
  for (uint64_t v : {static_cast<uint64_t>(s.elapsed_nanos), s.missed_starts, s.late_starts,
                     s.in_flight, s.held}) {
    Put(&out, v);
  }
  Put(&out, s.sources.size());
  for (const SourceSnapshot& source : s.sources) {
    Put(&out, source.source.size());
    out += source.source;
    Put(&out, source.counts.attempted);
    Put(&out, source.counts.succeeded);
    Put(&out, source.counts.requests);
    Put(&out, source.counts.tls_full);
    Put(&out, source.counts.tls_resumed);
    Put(&out, source.counts.failures.size());
    source.counts.ForEachFailure([&](Phase phase, int code, uint64_t count) {
      Put(&out, static_cast<uint64_t>(phase));
      Put(&out, static_cast<uint64_t>(code));
      Put(&out, count);
    });
  }
  for (const Histogram* h : {&s.connect_latency, &s.connection_latency, &s.start_lateness,
                             &s.connect_call, &s.loop_lag, &s.tls_handshake}) {
    PutHistogram(&out, *h);
  }
  Put(&out, s.status_codes.size());
  for (const auto& [code, n] : s.status_codes) {
    Put(&out, static_cast<uint64_t>(code));
    Put(&out, n);
  }
  return out;
}

bool DecodeSnapshot(absl::string_view bytes, EngineSnapshot* out) {
  Reader r(bytes);
  EngineSnapshot s;
  s.elapsed_nanos = static_cast<int64_t>(r.Get());
  s.missed_starts = r.Get();
  s.late_starts = r.Get();
  s.in_flight = r.Get();
  s.held = r.Get();
  uint64_t sources = r.Get();
  for (uint64_t i = 0; i < sources && r.ok(); ++i) {
    SourceSnapshot source;
    source.source = r.GetString();
    source.counts.attempted = r.Get();
    source.counts.succeeded = r.Get();
    source.counts.requests = r.Get();
    source.counts.tls_full = r.Get();
    source.counts.tls_resumed = r.Get();
    uint64_t cells = r.Get();
    for (uint64_t c = 0; c < cells && r.ok(); ++c) {
      uint64_t phase = r.Get();
      uint64_t code = r.Get();
      uint64_t count = r.Get();
      if (phase >= kPhaseCount || code >= kErrnoSlots) return false;
      source.counts.failures.Add(static_cast<Phase>(phase), static_cast<int>(code), count);
    }
    s.sources.push_back(std::move(source));
  }
  for (Histogram* h : {&s.connect_latency, &s.connection_latency, &s.start_lateness,
                       &s.connect_call, &s.loop_lag, &s.tls_handshake}) {
    *h = r.GetHistogram();
  }
  uint64_t codes = r.Get();
  if (codes > kStatusCodes) return false;
  for (uint64_t i = 0; i < codes && r.ok(); ++i) {
    uint64_t code = r.Get();
    uint64_t n = r.Get();
    if (code < kMinStatusCode || code >= kMinStatusCode + kStatusCodes) return false;
    s.status_codes[static_cast<int>(code)] = n;
  }
  if (!r.ok()) return false;
  *out = std::move(s);
  return true;
}

}  // namespace churnlab
