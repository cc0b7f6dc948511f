#include "coordinator/run_report_builder.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "proto/telemetry_codec.h"
#include "proto/threshold.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

void AddSource(const v1::SourceCounts& in, v1::SourceReport* out, v1::RunReport* report) {
  out->set_ip(in.ip());
  out->set_attempted(in.attempted());
  out->set_succeeded(in.succeeded());
  uint64_t failed = 0;
  for (const v1::FailureCount& f : in.failures()) {
    std::string key = ErrorKey(f);
    (*out->mutable_errors())[key] += f.count();
    (*report->mutable_errors())[key] += f.count();
    failed += f.count();
  }
  out->set_failed(failed);
  v1::Totals* t = report->mutable_totals();
  t->set_attempted(t->attempted() + in.attempted());
  t->set_succeeded(t->succeeded() + in.succeeded());
  t->set_failed(t->failed() + failed);
  t->set_requests(t->requests() + in.requests());
}

void EvaluateThresholds(const RunRecord& run, v1::RunReport* report) {
  bool passed = run.state == "completed";
  for (const std::string& expression : run.spec.thresholds()) {
    absl::StatusOr<Threshold> threshold = ParseThreshold(expression);
    if (!threshold.ok()) continue;  // validated at StartRun
    double observed = ObservedMetric(*threshold, *report);
    v1::ThresholdResult* result = report->add_thresholds();
    result->set_expression(threshold->expression);
    result->set_observed(observed);
    result->set_passed(ThresholdPasses(*threshold, observed));
    passed = passed && result->passed();
  }
  for (const v1::AgentReport& agent : report->agents()) passed = passed && agent.problem().empty();
  report->set_verdict(passed ? "pass" : "fail");
}

}  // namespace

v1::RunReport BuildReport(const RunRecord& run, bool final) {
  v1::RunReport report;
  report.set_run_id(run.id);
  *report.mutable_spec() = run.spec;
  report.set_state(run.state);
  report.set_started_at(absl::FormatTime(absl::RFC3339_sec, run.started_at, absl::UTCTimeZone()));
  report.set_requested_rate(run.spec.rate());
  report.mutable_totals();
  Histogram connect;
  Histogram total;
  int64_t elapsed_nanos = 0;
  for (const ShardRecord& shard : run.shards) {
    v1::AgentReport* agent = report.add_agents();
    agent->set_name(shard.assignment.agent);
    agent->set_host(shard.host);
    agent->set_problem(shard.problem);
    for (const v1::SourceCounts& source : shard.latest.sources()) {
      AddSource(source, agent->add_sources(), &report);
    }
    v1::Totals* t = report.mutable_totals();
    t->set_missed_starts(t->missed_starts() + shard.latest.missed_starts());
    connect.Merge(HistogramFromProto(shard.latest.connect_latency()));
    total.Merge(HistogramFromProto(shard.latest.connection_latency()));
    elapsed_nanos =
        std::max(elapsed_nanos, TimeUtil::DurationToNanoseconds(shard.latest.elapsed()));
  }
  SummarizeLatency(connect, report.mutable_latency()->mutable_connect());
  SummarizeLatency(total, report.mutable_latency()->mutable_total());
  double seconds = elapsed_nanos / 1e9;
  report.set_duration_s(seconds);
  report.set_achieved_rate(seconds > 0 ? report.totals().succeeded() / seconds : 0);
  for (const v1::SeriesPoint& point : run.series) *report.add_series() = point;
  if (final) EvaluateThresholds(run, &report);
  return report;
}

void AppendSeriesPoint(RunRecord* run, const v1::RunReport& now, double t_s) {
  v1::SeriesPoint point;
  point.set_t_s(t_s);
  point.set_interval_s(t_s - (run->series.empty() ? 0 : run->series.back().t_s()));
  const v1::Totals& before = run->series_totals;
  point.set_attempted(now.totals().attempted() - before.attempted());
  point.set_succeeded(now.totals().succeeded() - before.succeeded());
  point.set_failed(now.totals().failed() - before.failed());
  for (const auto& [key, count] : now.errors()) {
    uint64_t delta = count - run->series_errors[key];
    if (delta > 0) (*point.mutable_errors())[key] = delta;
    run->series_errors[key] = count;
  }
  uint64_t in_flight = 0;
  Histogram connect;
  for (const ShardRecord& shard : run->shards) {
    in_flight += shard.latest.in_flight();
    connect.Merge(HistogramFromProto(shard.latest.connect_latency()));
  }
  point.set_in_flight(in_flight);
  Histogram interval = connect;
  interval.Subtract(run->series_connect);
  point.set_connect_p99_ms(interval.Percentile(99) / 1e6);
  run->series_connect = connect;
  run->series_totals = now.totals();
  run->series.push_back(std::move(point));
}

}  // namespace churnlab
