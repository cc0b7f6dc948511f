#include "proto/telemetry_codec.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/engine_params.h"
#include "common/target_names.h"
#include "proto/message_json.h"
#include "proto/tcp_state_counts.h"

namespace churnlab {
namespace {

// Drops the keys `known` refuses and clamps the counts; how many it changed.
template <typename Key, typename Known>
uint64_t SanitizeCounts(google::protobuf::Map<Key, uint64_t>* counts, Known known) {
  uint64_t changed = 0;
  for (auto it = counts->begin(); it != counts->end();) {
    if (!known(it->first)) {
      it = counts->erase(it);
      ++changed;
      continue;
    }
    if (it->second > kMaxTelemetryCount) {
      it->second = kMaxTelemetryCount;
      ++changed;
    }
    ++it;
  }
  return changed;
}

uint64_t ClampTo(uint64_t value, uint64_t max, uint64_t* changed) {
  if (value <= max) return value;
  ++*changed;
  return max;
}

uint64_t Clamp(uint64_t value, uint64_t* changed) {
  return ClampTo(value, kMaxTelemetryCount, changed);
}

// A failure code as agents write them: an errno name ("EADDRNOTAVAIL"), "EOF", "TIMEOUT", ...
// Anything else (a formula for a spreadsheet, escape sequences for a terminal) is no code.
bool IsFailureCode(const std::string& code) {
  if (code.empty() || code.size() > kMaxFailureCodeLength) return false;
  return std::all_of(code.begin(), code.end(), [](char c) {
    return absl::ascii_isupper(static_cast<unsigned char>(c)) ||
           absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

// HTTP status codes are 100..599: any other key goes (so the map holds 500 at most).
uint64_t SanitizeStatusCodes(google::protobuf::Map<int32_t, uint64_t>* codes) {
  return SanitizeCounts(codes, [](int32_t code) { return code >= 100 && code <= 599; });
}

// Ports a count of ports cannot pass.
constexpr uint64_t kPortCount = 65536;

template <typename T>
uint64_t Truncate(google::protobuf::RepeatedPtrField<T>* field, int max) {
  if (field->size() <= max) return 0;
  uint64_t dropped = static_cast<uint64_t>(field->size() - max);
  field->DeleteSubrange(max, field->size() - max);
  return dropped;
}

// A name and its addresses as an agent reports them: at most kMaxResolvedTargets names of a
// DNS name's length, each with at most kMaxReportedAddresses addresses that parse, its counts
// within kMaxDestinations; others go.
uint64_t SanitizeResolved(google::protobuf::RepeatedPtrField<v1::ResolvedTarget>* resolved) {
  uint64_t changed = Truncate(resolved, kMaxResolvedTargets);
  for (auto it = resolved->begin(); it != resolved->end();) {
    bool ok = ParseNamedTarget(it->name()).ok() && it->addresses_size() <= kMaxReportedAddresses &&
              it->addresses_used() <= kMaxDestinations && it->failed_lookups() <= it->lookups();
    for (const std::string& a : it->addresses()) ok = ok && SocketAddress::ParseIpPort(a).ok();
    if (!ok) {
      it = resolved->erase(it);
      ++changed;
    } else {
      ++it;
    }
  }
  return changed;
}

}  // namespace

uint64_t SanitizeTelemetry(v1::ShardTelemetry* t) {
  // Fields this build does not know (an older agent's map of state names, or a stranger's
  // padding) would ride along in every copy of the message the coordinator keeps.
  t->DiscardUnknownFields();
  uint64_t changed = Truncate(t->mutable_sources(), kMaxTelemetrySources) +
                     Truncate(t->mutable_listen(), kMaxTelemetryListeners);
  for (v1::SourceCounts& s : *t->mutable_sources()) {
    s.set_attempted(Clamp(s.attempted(), &changed));
    s.set_succeeded(Clamp(s.succeeded(), &changed));
    s.set_requests(Clamp(s.requests(), &changed));
    s.set_tls_full(Clamp(s.tls_full(), &changed));
    s.set_tls_resumed(Clamp(s.tls_resumed(), &changed));
    for (v1::FailureCount& f : *s.mutable_failures()) {
      f.set_count(Clamp(f.count(), &changed));
      if (!IsFailureCode(f.code())) {
        f.set_code("UNKNOWN");
        ++changed;
      }
    }
    s.set_ports_in_use_at_start(ClampTo(s.ports_in_use_at_start(), kPortCount, &changed));
    s.set_ports_bind_taken_at_start(
        ClampTo(s.ports_bind_taken_at_start(), s.ports_in_use_at_start(), &changed));
    changed += ClampCounts(s.mutable_tcp_states(), kMaxTelemetryCount);
  }
  for (v1::ListenSockets& l : *t->mutable_listen())
    changed += ClampCounts(l.mutable_tcp_states(), kMaxTelemetryCount);
  changed += SanitizeStatusCodes(t->mutable_status_codes());
  changed += SanitizeResolved(t->mutable_resolved_targets());
  if (t->has_server()) {
    v1::ServerCounts* c = t->mutable_server();
    c->set_accepted(Clamp(c->accepted(), &changed));
    c->set_answered(Clamp(c->answered(), &changed));
    c->set_tls_full(Clamp(c->tls_full(), &changed));
    c->set_tls_resumed(Clamp(c->tls_resumed(), &changed));
    c->set_tls_failed(Clamp(c->tls_failed(), &changed));
  }
  changed += ClampCounts(t->mutable_host()->mutable_tcp_states(), kMaxTelemetryCount);
  if (t->has_ports_at_start()) {
    v1::PortsAtStart* p = t->mutable_ports_at_start();
    p->set_in_use(ClampTo(p->in_use(), kPortCount, &changed));
    p->set_listening(ClampTo(p->listening(), p->in_use(), &changed));
    p->set_time_wait(Clamp(p->time_wait(), &changed));
    p->set_bind_taken(ClampTo(p->bind_taken(), p->in_use(), &changed));
  }
  t->set_engine_processes(
      static_cast<uint32_t>(ClampTo(t->engine_processes(), kMaxEngineProcesses, &changed)));
  t->set_engine_processes_lost(
      static_cast<uint32_t>(ClampTo(t->engine_processes_lost(), t->engine_processes(), &changed)));
  if (t->has_census_age()) {
    const google::protobuf::Duration& age = t->census_age();
    if (age.seconds() < 0 || age.seconds() > kMaxCensusAgeSeconds || age.nanos() < 0 ||
        age.nanos() > 999'999'999) {
      t->clear_census_age();
      ++changed;
    }
  }
  return changed;
}

void HistogramToProto(const Histogram& h, v1::HistogramData* out) {
  out->Clear();
  for (int i = 0; i < Histogram::kBuckets; ++i) {
    if (h.bucket_count(i) == 0) continue;
    out->add_bucket_indexes(i);
    out->add_bucket_counts(h.bucket_count(i));
  }
  out->set_count(h.count());
  out->set_sum_nanos(h.sum());
  out->set_min_nanos(h.min());
  out->set_max_nanos(h.max());
}

Histogram HistogramFromProto(const v1::HistogramData& data) {
  std::vector<std::pair<int, uint64_t>> buckets;
  int n = std::min(data.bucket_indexes_size(), data.bucket_counts_size());
  for (int i = 0; i < n; ++i) {
    buckets.emplace_back(static_cast<int>(data.bucket_indexes(i)), data.bucket_counts(i));
  }
  return Histogram::FromParts(buckets, data.sum_nanos(), data.min_nanos(), data.max_nanos());
}

std::string ErrorKey(const v1::FailureCount& failure) {
  switch (failure.phase()) {
    case v1::FAILURE_PHASE_CONNECT_TIMEOUT:
    case v1::FAILURE_PHASE_RESPONSE_TIMEOUT:
    case v1::FAILURE_PHASE_PROTOCOL:
    case v1::FAILURE_PHASE_STOPPED:
      return Word(failure.phase());
    case v1::FAILURE_PHASE_TLS:
    case v1::FAILURE_PHASE_STATUS:
      return absl::StrCat(Word(failure.phase()), "-", failure.code());  // "tls-TIMEOUT"
    default:
      return failure.code();
  }
}

void SummarizeLatency(const Histogram& h, v1::LatencySummary* out) {
  out->set_count(h.count());
  out->set_p50_ms(h.Percentile(50) / 1e6);
  out->set_p90_ms(h.Percentile(90) / 1e6);
  out->set_p99_ms(h.Percentile(99) / 1e6);
  out->set_max_ms(h.max() / 1e6);
}

const std::vector<int64_t>& LatencyHistogramBoundsNanos() {
  static const std::vector<int64_t> bounds = [] {
    std::vector<int64_t> out;
    for (int k = 13; k <= 34; ++k) {
      const int64_t octave = int64_t{1} << k;
      out.push_back(octave - 1);
      if (k == 34) break;
      // Eight steps an octave: each is four of the histogram's 32 sub-buckets, so an edge.
      for (int j = 1; j < 8; ++j) out.push_back(octave + j * (octave >> 3) - 1);
    }
    return out;
  }();
  return bounds;
}

void SummarizeHistogram(const Histogram& h, v1::LatencyHistogram* out) {
  out->Clear();
  const std::vector<int64_t>& bounds = LatencyHistogramBoundsNanos();
  uint64_t below = 0;
  int index = 0;
  for (int64_t bound : bounds) {
    // Powers of two start a bucket, so 2^k - 1 ends one: the sum is exact.
    for (; index < Histogram::kBuckets && Histogram::BucketUpperBound(index) <= bound; ++index) {
      below += h.bucket_count(index);
    }
    v1::LatencyBucket* bucket = out->add_buckets();
    bucket->set_le_ms(bound / 1e6);
    bucket->set_count(below);
  }
  out->set_count(h.count());
  out->set_sum_ms(h.sum() / 1e6);
}

}  // namespace churnlab
