#include "coordinator/run_report_builder.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "analysis/concurrency.h"
#include "analysis/run_shape.h"
#include "analysis/tuple_budget.h"
#include "coordinator/source_detail.h"
#include "proto/report_export.h"
#include "proto/report_totals.h"
#include "proto/run_spec.h"
#include "proto/tcp_state_counts.h"
#include "proto/telemetry_codec.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

// The most peer addresses a listen report keeps (an observer sends at most 16 a census).
constexpr int kMaxPeerIps = 16;

// The shards' latency histograms, merged bucket by bucket: the report's from them, and the
// series point's from them less those of the point before.
struct ShardHistograms {
  Histogram connect;
  Histogram total;  // the whole connection, socket() to close()
  Histogram connect_call;
  Histogram loop_lag;
  Histogram tls_handshake;

  void Add(const v1::ShardTelemetry& t) {
    connect.Merge(HistogramFromProto(t.connect_latency()));
    total.Merge(HistogramFromProto(t.connection_latency()));
    connect_call.Merge(HistogramFromProto(t.connect_call()));
    loop_lag.Merge(HistogramFromProto(t.loop_lag()));
    tls_handshake.Merge(HistogramFromProto(t.tls_handshake()));
  }
};

// The shards' histograms, and the longest elapsed time among them.
struct MergedLatency {
  ShardHistograms histograms;
  int64_t elapsed_nanos = 0;
  uint64_t connections_made = 0;  // handshakes completed, for requests per connection
  FailureTotals failures;
  // Targets given by name: every address any agent used each at, and the agents' lookups.
  struct Name {
    std::set<std::string> addresses;
    uint32_t used = 0;  // the most any agent used, when it cut its list
    uint64_t lookups = 0;
    uint64_t failed_lookups = 0;
  };
  std::map<std::string, Name> resolved;
};

// One shard's part of the report: its agent entry, its sources, its kernel's counters (once per
// kernel: `counted_kernels`), its starts not made, its histograms.
void AddShard(const ShardRecord& shard, std::set<std::string>& counted_kernels,
              MergedLatency& merged, v1::RunReport* report) {
  v1::AgentReport* agent = report->add_agents();
  agent->set_name(shard.assignment.agent);
  agent->set_host(shard.host);
  agent->set_problem(shard.problem);
  agent->set_lost_after_s(shard.lost_after_s);
  agent->set_share_handed_on(shard.share_handed_on);
  agent->set_fd_limit(shard.hello.fd_limit());
  agent->set_engine_processes(shard.latest.engine_processes());
  agent->set_engine_processes_lost(shard.latest.engine_processes_lost());
  for (const v1::SourceCounts& source : shard.latest.sources()) {
    merged.connections_made += AddSourceToReport(source, shard.latest.port_range_size(),
                                                 agent->add_sources(), report, &merged.failures);
  }
  *agent->mutable_host_tcp_states() = shard.latest.host().tcp_states();
  if (shard.latest.host().has_conntrack()) {
    *agent->mutable_conntrack() = shard.latest.host().conntrack();
  }
  if (shard.latest.has_ports_at_start()) {
    *agent->mutable_ports_at_start() = shard.latest.ports_at_start();
  }
  // Agents in one network namespace of one kernel read the same counters: count them once.
  // Never by host name: namespaces on one host share it, and each has counters of its own.
  const std::string& kernel = shard.hello.kernel_id();
  bool first_on_kernel = kernel.empty() || counted_kernels.insert(kernel).second;
  for (const auto& [name, delta] : shard.latest.host().counter_deltas()) {
    (*agent->mutable_kernel_counters())[name] = delta;
    if (first_on_kernel) (*report->mutable_kernel_counters())[name] += delta;
  }
  v1::Totals* t = report->mutable_totals();
  t->set_missed_starts(t->missed_starts() + shard.latest.missed_starts());
  t->set_late_starts(t->late_starts() + shard.latest.late_starts());
  merged.histograms.Add(shard.latest);
  for (const v1::ResolvedTarget& r : shard.latest.resolved_targets()) {
    MergedLatency::Name& name = merged.resolved[r.name()];
    name.addresses.insert(r.addresses().begin(), r.addresses().end());
    name.used = std::max(name.used, r.addresses_used());
    name.lookups += r.lookups();
    name.failed_lookups += r.failed_lookups();
  }
  for (const auto& [code, n] : shard.latest.status_codes()) (*t->mutable_status_codes())[code] += n;
  merged.elapsed_nanos =
      std::max(merged.elapsed_nanos, TimeUtil::DurationToNanoseconds(shard.latest.elapsed()));
}

// A target that observed the run: its listeners' peaks and its counters since the run began.
void AddObserver(const ObserverRecord& observer, v1::RunReport* report) {
  v1::ObserverReport* o = report->add_observers();
  o->set_name(observer.name);
  o->set_host(observer.host);
  o->mutable_sysctls()->insert(observer.sysctls.begin(), observer.sysctls.end());
  for (const auto& [address, peaks] : observer.peaks) *o->add_listen() = peaks;
  if (observer.latest.host().has_conntrack()) {
    *o->mutable_conntrack() = observer.latest.host().conntrack();
  }
  if (observer.latest.has_server()) {
    // Counts only grow; a smaller one means the target restarted, and counts from zero.
    auto since = [](uint64_t now, uint64_t then) { return now >= then ? now - then : now; };
    const v1::ServerCounts& now = observer.latest.server();
    const v1::ServerCounts& then = observer.server_baseline;
    v1::ServerCounts* s = o->mutable_server();
    s->set_accepted(since(now.accepted(), then.accepted()));
    s->set_answered(since(now.answered(), then.answered()));
    s->set_tls_full(since(now.tls_full(), then.tls_full()));
    s->set_tls_resumed(since(now.tls_resumed(), then.tls_resumed()));
    s->set_tls_failed(since(now.tls_failed(), then.tls_failed()));
  }
  for (const auto& [name, value] : observer.latest.host().counter_deltas()) {
    auto base = observer.baseline.find(name);
    (*o->mutable_kernel_counters())[name] =
        value - (base == observer.baseline.end() ? 0 : base->second);
  }
}

// How many connections the run held and what each cost: only for a run that holds them
// (`hold`); in a churn run the few in flight at a time make per-connection memory meaningless
// (a host's baseline divided by one connection).
void AddConcurrency(const RunRecord& run, v1::RunReport* report) {
  if (google::protobuf::util::TimeUtil::DurationToNanoseconds(run.spec.hold()) <= 0) return;
  std::vector<analysis::ConcurrencyShard> held;
  std::set<std::string> observer_kernels;
  for (const ObserverRecord& observer : run.observers) {
    if (!observer.boot_id.empty()) observer_kernels.insert(observer.boot_id);
  }
  const analysis::RunShape& shape = run.shape;
  for (const ShardRecord& shard : run.shards) {
    held.push_back(analysis::ConcurrencyShard{shard.assignment.agent, &shard.hello, &shard.latest,
                                              static_cast<uint32_t>(run.spec.targets_size()),
                                              shape.bind});
  }
  v1::ConcurrencyReport concurrency =
      analysis::AnalyzeConcurrency(held, observer_kernels, shape.all_targets_loopback);
  if (concurrency.peak_in_flight() > 0 || concurrency.peak_established() > 0) {
    *report->mutable_concurrency() = std::move(concurrency);
  }
}

}  // namespace

v1::RunReport BuildReport(const RunRecord& run) {
  v1::RunReport report;
  report.set_run_id(run.id);
  *report.mutable_spec() = run.spec;
  report.set_state(run.state);
  report.set_started_at(absl::FormatTime(absl::RFC3339_sec, run.started_wall, absl::UTCTimeZone()));
  *report.mutable_start_time() =
      TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(run.started_wall));
  report.set_requested_rate(run.spec.rate());
  report.mutable_totals();
  MergedLatency merged;
  std::set<std::string> counted_kernels;
  for (const ShardRecord& shard : run.shards) AddShard(shard, counted_kernels, merged, &report);
  for (const ObserverRecord& observer : run.observers) AddObserver(observer, &report);
  AddFailureTotals(merged.failures, &report);
  const ShardHistograms& h = merged.histograms;
  SummarizeLatencies({h.connect, h.total, h.connect_call, h.loop_lag, h.tls_handshake},
                     report.mutable_latency());
  AddExchangeTotals(report.mutable_totals());
  for (const auto& [name, found] : merged.resolved) {
    v1::ResolvedTarget* r = report.add_resolved_targets();
    r->set_name(name);
    // At most kMaxReportedAddresses: agents that each cut their own lists may add up past it.
    for (const std::string& a : found.addresses) {
      if (r->addresses_size() == kMaxReportedAddresses) break;
      r->add_addresses(a);
    }
    const size_t used = std::max<size_t>(found.addresses.size(), found.used);
    if (used > static_cast<size_t>(r->addresses_size())) {
      r->set_addresses_used(static_cast<uint32_t>(used));
    }
    r->set_lookups(static_cast<uint32_t>(std::min<uint64_t>(found.lookups, UINT32_MAX)));
    r->set_failed_lookups(
        static_cast<uint32_t>(std::min<uint64_t>(found.failed_lookups, UINT32_MAX)));
  }
  double seconds = merged.elapsed_nanos / 1e9;
  report.set_duration_s(seconds);
  report.set_achieved_rate(seconds > 0 ? report.totals().succeeded() / seconds : 0);
  v1::Totals* totals = report.mutable_totals();
  totals->set_requests_per_connection(merged.connections_made > 0
                                          ? static_cast<double>(totals->requests()) /
                                                merged.connections_made
                                          : 0);
  AddWindowsErrors(&report);
  std::vector<analysis::ShardFacts> facts = FactsOf(run);
  *report.mutable_tuple_budget() = analysis::ComputeTupleBudget(run.spec, run.shape, facts);
  report.set_store_error(run.store_error);
  AddConcurrency(run, &report);
  return report;
}

std::vector<analysis::ShardFacts> FactsOf(const RunRecord& run) {
  std::vector<analysis::ShardFacts> facts;
  facts.reserve(run.shards.size());
  for (const ShardRecord& shard : run.shards) {
    if (shard.never_ran) continue;  // its sources carried nothing: they are no part of the budget
    const Assignment& a = shard.assignment;
    analysis::ShardFacts& f = facts.emplace_back(analysis::ShardFacts{
        &shard.hello, a.sources, a.rate, a.rate > 0 ? a.max_in_flight : a.concurrency});
    for (const v1::SourceCounts& s : shard.latest.sources()) {
      if (s.ports_in_use_at_start() > 0) f.taken_at_start[s.ip()] = s.ports_in_use_at_start();
      if (s.ports_bind_taken_at_start() > 0) {
        f.bind_taken_at_start[s.ip()] = s.ports_bind_taken_at_start();
      }
    }
    // Names count every address they resolved to on the agent.
    if (shard.latest.resolved_targets_size() > 0) {
      f.destinations = static_cast<uint32_t>(run.spec.targets_size());
      for (const v1::ResolvedTarget& r : shard.latest.resolved_targets()) {
        const uint32_t used = std::max<uint32_t>(r.addresses_size(), r.addresses_used());
        f.destinations += std::max<uint32_t>(1, used) - 1;
      }
    }
    // Its census at the start once it ran; before, the idle census its hello carried.
    if (shard.latest.has_ports_at_start()) {
      f.range_at_start = shard.latest.ports_at_start();
    } else if (shard.hello.has_range_held()) {
      f.range_at_start = shard.hello.range_held();
    }
  }
  return facts;
}

void UpdateObserver(ObserverRecord* record, const v1::ShardTelemetry& telemetry) {
  record->latest = telemetry;
  for (const v1::ListenSockets& listen : telemetry.listen()) {
    v1::ListenReport& peaks = record->peaks[listen.address()];
    peaks.set_address(listen.address());
    const v1::TcpStateCounts& states = listen.tcp_states();
    peaks.set_peak_time_wait(std::max(peaks.peak_time_wait(), states.time_wait()));
    peaks.set_peak_close_wait(std::max(peaks.peak_close_wait(), states.close_wait()));
    peaks.set_peak_established(std::max(peaks.peak_established(), states.established()));
    for (const std::string& ip : listen.peer_ips()) {
      if (peaks.peer_ips_size() >= kMaxPeerIps) break;
      if (std::find(peaks.peer_ips().begin(), peaks.peer_ips().end(), ip) ==
          peaks.peer_ips().end()) {
        peaks.add_peer_ips(ip);
      }
    }
  }
}

namespace {

// The agent's part of the interval: its counts since its previous point, its sources now.
v1::AgentPoint MakeAgentPoint(ShardRecord* shard, const v1::AgentReport& now) {
  v1::AgentPoint point;
  point.set_name(now.name());
  v1::Totals totals;
  for (const v1::SourceReport& source : now.sources()) {
    totals.set_attempted(totals.attempted() + source.attempted());
    totals.set_succeeded(totals.succeeded() + source.succeeded());
    totals.set_failed(totals.failed() + source.failed());
  }
  point.set_attempted(totals.attempted() - shard->series_totals.attempted());
  point.set_succeeded(totals.succeeded() - shard->series_totals.succeeded());
  point.set_failed(totals.failed() - shard->series_totals.failed());
  shard->series_totals = totals;
  point.set_port_range_size(shard->latest.port_range_size());
  for (const v1::SourceCounts& source : shard->latest.sources()) {
    v1::SourcePoint* s = point.add_sources();
    s->set_ip(source.ip());
    s->set_ports_in_use(source.ports_in_use());
    *s->mutable_tcp_states() = source.tcp_states();
    AddCounts(source.tcp_states(), point.mutable_tcp_states());
  }
  shard->fresh = false;
  return point;
}

// The server side's TCP states, summed over the observer's listeners.
void AddObserverPoint(const ObserverRecord& observer, v1::SeriesPoint* point) {
  v1::ObserverPoint* o = point->add_observers();
  o->set_name(observer.name);
  for (const v1::ListenSockets& listen : observer.latest.listen()) {
    AddCounts(listen.tcp_states(), o->mutable_tcp_states());
  }
}

// `now` less `*last` (the counts at the last point), which `now` then becomes: the interval's.
Histogram Interval(Histogram now, Histogram* last) {
  Histogram interval = now;
  interval.Subtract(*last);
  *last = std::move(now);
  return interval;
}

// p50, p90, p99 and p99.9 of `h`, in ms, to the four setters.
template <typename Setter>
void SetQuantiles(const Histogram& h, v1::SeriesPoint* point, Setter p50, Setter p90, Setter p99,
                  Setter p999) {
  (point->*p50)(h.Percentile(50) / 1e6);
  (point->*p90)(h.Percentile(90) / 1e6);
  (point->*p99)(h.Percentile(99) / 1e6);
  (point->*p999)(h.Percentile(99.9) / 1e6);
}

// The interval's latencies: the merged cumulative histograms less those of the last point,
// which they then become.
void SetIntervalLatency(RunRecord* run, ShardHistograms now, v1::SeriesPoint* point) {
  using P = v1::SeriesPoint;
  SetQuantiles(Interval(std::move(now.connect), &run->series_connect), point,
               &P::set_connect_p50_ms, &P::set_connect_p90_ms, &P::set_connect_p99_ms,
               &P::set_connect_p999_ms);
  SetQuantiles(Interval(std::move(now.total), &run->series_connection), point, &P::set_total_p50_ms,
               &P::set_total_p90_ms, &P::set_total_p99_ms, &P::set_total_p999_ms);
  SetQuantiles(Interval(std::move(now.tls_handshake), &run->series_tls_handshake), point,
               &P::set_tls_handshake_p50_ms, &P::set_tls_handshake_p90_ms,
               &P::set_tls_handshake_p99_ms, &P::set_tls_handshake_p999_ms);
  point->set_connect_call_p99_ms(
      Interval(std::move(now.connect_call), &run->series_connect_call).Percentile(99) / 1e6);
  point->set_loop_lag_max_ms(
      Interval(std::move(now.loop_lag), &run->series_loop_lag).Percentile(100) / 1e6);
}

}  // namespace

void AppendSeriesPoint(RunRecord* run, const v1::RunReport& now, double t_s) {
  v1::SeriesPoint point;
  point.set_t_s(t_s);
  point.set_interval_s(t_s - (run->point_count == 0 ? 0 : run->last_point.t_s()));
  point.set_requested_rate(RequestedRateAt(run->spec, t_s));
  const v1::Totals& before = run->series_totals;
  point.set_attempted(now.totals().attempted() - before.attempted());
  point.set_succeeded(now.totals().succeeded() - before.succeeded());
  point.set_failed(now.totals().failed() - before.failed());
  point.set_tls_full(now.totals().tls_full() - before.tls_full());
  point.set_tls_resumed(now.totals().tls_resumed() - before.tls_resumed());
  for (const auto& [key, count] : now.errors()) {
    uint64_t delta = count - run->series_errors[key];
    if (delta > 0) (*point.mutable_errors())[key] = delta;
    run->series_errors[key] = count;
  }
  for (const v1::FailureCount& f : now.failures()) {
    uint64_t& counted = run->series_failures[{f.phase(), f.code()}];
    if (f.count() > counted) {
      v1::FailureCount* delta = point.add_failures();
      *delta = f;
      delta->set_count(f.count() - counted);
    }
    counted = f.count();
  }
  uint64_t in_flight = 0;
  uint64_t time_wait = 0;
  double max_fill = 0;
  double census_age_s = 0;
  ShardHistograms latency;
  for (size_t i = 0; i < run->shards.size(); ++i) {
    ShardRecord& shard = run->shards[i];
    in_flight += shard.latest.in_flight();
    census_age_s =
        std::max(census_age_s, TimeUtil::DurationToNanoseconds(shard.latest.census_age()) / 1e9);
    latency.Add(shard.latest);
    v1::AgentPoint* agent = point.add_agents();
    *agent = MakeAgentPoint(&shard, now.agents(i));
    for (const v1::SourcePoint& source : agent->sources()) {
      time_wait += source.tcp_states().time_wait();
      if (agent->port_range_size() > 0) {
        max_fill = std::max(max_fill,
                            static_cast<double>(source.ports_in_use()) / agent->port_range_size());
      }
    }
  }
  KeepFullestSources(&point);  // after time_wait and max_fill have counted every source
  for (const ObserverRecord& observer : run->observers) AddObserverPoint(observer, &point);
  point.set_in_flight(in_flight);
  point.set_time_wait(time_wait);
  point.set_max_port_fill(max_fill);
  point.set_census_age_s(census_age_s);
  SetIntervalLatency(run, std::move(latency), &point);
  run->series_totals = now.totals();
  run->last_point = std::move(point);
  ++run->point_count;
}

}  // namespace churnlab
