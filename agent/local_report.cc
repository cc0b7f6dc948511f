#include "agent/local_report.h"

#include <google/protobuf/util/time_util.h>

#include "agent/shard_telemetry.h"
#include "proto/message_json.h"
#include "proto/report_totals.h"
#include "proto/telemetry_codec.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

template <typename Enum>
Enum ToProto(const google::protobuf::EnumDescriptor& type, absl::string_view word) {
  return static_cast<Enum>(EnumFromWord(type, word).value_or(0));
}

// The spec a coordinator would have run this as.
v1::RunSpec SpecOf(const EngineParams& p, const std::vector<Resolution>& resolved) {
  v1::RunSpec spec;
  for (size_t i = 0; i < p.targets.size(); ++i) {
    if (i >= p.target_names.size() || p.target_names[i].empty()) {
      spec.add_targets(p.targets[i].ToString());
    }
  }
  for (const Resolution& r : resolved) {
    spec.add_targets(absl::StrCat(r.target.host, ":", r.target.port));
  }
  spec.set_protocol(ToProto<v1::Protocol>(*v1::Protocol_descriptor(), ProtocolName(p.protocol)));
  spec.set_close_policy(
      ToProto<v1::ClosePolicy>(*v1::ClosePolicy_descriptor(), ClosePolicyName(p.close_policy)));
  spec.set_bind_mode(ToProto<v1::BindMode>(*v1::BindMode_descriptor(), BindModeName(p.bind_mode)));
  spec.set_rate(p.rate);
  spec.set_concurrency(p.concurrency);
  *spec.mutable_duration() = TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(p.duration));
  spec.set_requests_per_connection(p.requests_per_connection);
  if (SpeaksHttp(p.protocol)) {
    spec.mutable_request()->set_method(p.request.method);
    spec.mutable_request()->set_path(p.request.path);
    for (const std::string& h : p.request.headers) spec.mutable_request()->add_headers(h);
    spec.mutable_request()->set_expect_status(p.expect_status);
  }
  if (UsesTls(p.protocol)) {
    spec.mutable_tls()->set_insecure(p.tls.insecure);
    spec.mutable_tls()->set_resumption(p.tls.resumption);
  }
  return spec;
}

}  // namespace

v1::RunReport LocalReport(const EngineParams& params, const EngineSnapshot& snapshot,
                          const std::vector<Resolution>& resolved) {
  v1::RunReport report;
  *report.mutable_spec() = SpecOf(params, resolved);
  report.set_state(v1::RunReport::STATE_COMPLETED);
  report.set_requested_rate(params.rate);
  v1::ShardTelemetry t = SnapshotToTelemetry(snapshot, "local", /*final=*/true);
  v1::AgentReport* agent = report.add_agents();
  agent->set_name("local");
  FailureTotals failures;
  uint64_t made = 0;
  for (const v1::SourceCounts& source : t.sources()) {
    made += AddSourceToReport(source, 0, agent->add_sources(), &report, &failures);
  }
  AddFailureTotals(failures, &report);
  v1::Totals* totals = report.mutable_totals();
  totals->set_missed_starts(snapshot.missed_starts);
  totals->set_late_starts(snapshot.late_starts);
  totals->set_requests_per_connection(made > 0 ? static_cast<double>(totals->requests()) / made
                                               : 0);
  for (const auto& [code, n] : snapshot.status_codes) (*totals->mutable_status_codes())[code] = n;
  AddExchangeTotals(totals);
  SummarizeLatencies({snapshot.connect_latency, snapshot.connection_latency, snapshot.connect_call,
                      snapshot.loop_lag, snapshot.tls_handshake},
                     report.mutable_latency());
  double seconds = snapshot.elapsed_nanos / 1e9;
  report.set_duration_s(seconds);
  report.set_achieved_rate(seconds > 0 ? totals->succeeded() / seconds : 0);
  for (const Resolution& r : resolved) {
    v1::ResolvedTarget* out = report.add_resolved_targets();
    out->set_name(absl::StrCat(r.target.host, ":", r.target.port));
    for (const SocketAddress& a : r.addresses) out->add_addresses(a.ToString());
  }
  return report;
}

}  // namespace churnlab
