#include "proto/report_totals.h"

#include "absl/strings/str_cat.h"
#include "proto/telemetry_codec.h"

namespace churnlab {
namespace {

// A failure in one of these phases came after the handshake: the connection was made.
bool AfterHandshake(v1::FailurePhase phase) {
  return phase == v1::FAILURE_PHASE_WRITE || phase == v1::FAILURE_PHASE_READ ||
         phase == v1::FAILURE_PHASE_PROTOCOL || phase == v1::FAILURE_PHASE_RESPONSE_TIMEOUT ||
         phase == v1::FAILURE_PHASE_TLS || phase == v1::FAILURE_PHASE_STATUS;
}

}  // namespace

uint64_t AddSourceToReport(const v1::SourceCounts& in, uint64_t port_range_size,
                           v1::SourceReport* out, v1::RunReport* report, FailureTotals* failures) {
  out->set_ip(in.ip());
  out->set_attempted(in.attempted());
  out->set_succeeded(in.succeeded());
  out->set_peak_ports_in_use(in.peak_ports_in_use());
  out->set_port_range_size(port_range_size);
  out->set_peak_time_wait(in.peak_time_wait());
  out->set_peak_fin_wait2(in.peak_fin_wait2());
  out->set_ports_in_use_at_start(in.ports_in_use_at_start());
  out->set_tls_full(in.tls_full());
  out->set_tls_resumed(in.tls_resumed());
  uint64_t failed = 0;
  uint64_t made = in.succeeded();
  for (const v1::FailureCount& f : in.failures()) {
    std::string key = ErrorKey(f);
    (*out->mutable_errors())[key] += f.count();
    (*report->mutable_errors())[key] += f.count();
    (*failures)[{f.phase(), f.code()}] += f.count();
    failed += f.count();
    if (AfterHandshake(f.phase())) made += f.count();
  }
  out->set_failed(failed);
  v1::Totals* t = report->mutable_totals();
  t->set_attempted(t->attempted() + in.attempted());
  t->set_succeeded(t->succeeded() + in.succeeded());
  t->set_failed(t->failed() + failed);
  t->set_requests(t->requests() + in.requests());
  t->set_tls_full(t->tls_full() + in.tls_full());
  t->set_tls_resumed(t->tls_resumed() + in.tls_resumed());
  return made;
}

void AddFailureTotals(const FailureTotals& failures, v1::RunReport* report) {
  for (const auto& [kind, count] : failures) {
    v1::FailureCount* f = report->add_failures();
    f->set_phase(kind.first);
    f->set_code(kind.second);
    f->set_count(count);
  }
}

void AddExchangeTotals(v1::Totals* t) {
  uint64_t handshakes = t->tls_full() + t->tls_resumed();
  t->set_resumed_ratio(handshakes > 0 ? static_cast<double>(t->tls_resumed()) / handshakes : 0);
  for (const auto& [code, n] : t->status_codes()) {
    (*t->mutable_status_classes())[absl::StrCat(code / 100, "xx")] += n;
  }
}

void SummarizeLatencies(const RunHistograms& h, v1::Latency* out) {
  SummarizeLatency(h.connect, out->mutable_connect());
  SummarizeHistogram(h.connect, out->mutable_connect_histogram());
  SummarizeLatency(h.total, out->mutable_total());
  SummarizeLatency(h.connect_call, out->mutable_connect_call());
  SummarizeLatency(h.loop_lag, out->mutable_loop_lag());
  if (h.tls_handshake.count() > 0) {
    SummarizeLatency(h.tls_handshake, out->mutable_tls_handshake());
    SummarizeHistogram(h.tls_handshake, out->mutable_tls_handshake_histogram());
  }
}

}  // namespace churnlab
