#include "coordinator/run_report_builder.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/net_address.h"
#include "proto/telemetry_codec.h"
#include "proto/threshold.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

void AddSource(const v1::SourceCounts& in, uint64_t port_range_size, v1::SourceReport* out,
               v1::RunReport* report) {
  out->set_ip(in.ip());
  out->set_attempted(in.attempted());
  out->set_succeeded(in.succeeded());
  out->set_peak_ports_in_use(in.peak_ports_in_use());
  out->set_port_range_size(port_range_size);
  out->set_peak_time_wait(in.peak_time_wait());
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
  Histogram connect_call;
  Histogram loop_lag;
  int64_t elapsed_nanos = 0;
  std::set<std::string> counted_kernels;
  for (const ShardRecord& shard : run.shards) {
    v1::AgentReport* agent = report.add_agents();
    agent->set_name(shard.assignment.agent);
    agent->set_host(shard.host);
    agent->set_problem(shard.problem);
    agent->set_lost_after_s(shard.lost_after_s);
    agent->set_share_handed_on(shard.share_handed_on);
    for (const v1::SourceCounts& source : shard.latest.sources()) {
      AddSource(source, shard.latest.port_range_size(), agent->add_sources(), &report);
    }
    agent->mutable_host_tcp_states()->insert(shard.latest.host().tcp_states().begin(),
                                             shard.latest.host().tcp_states().end());
    // Agents in one network namespace of one kernel read the same counters: count them once.
    // Never by host name: namespaces on one host share it, and each has counters of its own.
    const std::string& kernel = shard.hello.kernel_id();
    bool first_on_kernel = kernel.empty() || counted_kernels.insert(kernel).second;
    for (const auto& [name, delta] : shard.latest.host().counter_deltas()) {
      (*agent->mutable_kernel_counters())[name] = delta;
      if (first_on_kernel) (*report.mutable_kernel_counters())[name] += delta;
    }
    v1::Totals* t = report.mutable_totals();
    t->set_missed_starts(t->missed_starts() + shard.latest.missed_starts());
    t->set_late_starts(t->late_starts() + shard.latest.late_starts());
    connect.Merge(HistogramFromProto(shard.latest.connect_latency()));
    total.Merge(HistogramFromProto(shard.latest.connection_latency()));
    connect_call.Merge(HistogramFromProto(shard.latest.connect_call()));
    loop_lag.Merge(HistogramFromProto(shard.latest.loop_lag()));
    elapsed_nanos =
        std::max(elapsed_nanos, TimeUtil::DurationToNanoseconds(shard.latest.elapsed()));
  }
  for (const ObserverRecord& observer : run.observers) {
    v1::ObserverReport* o = report.add_observers();
    o->set_name(observer.name);
    o->set_host(observer.host);
    for (const auto& [address, peaks] : observer.peaks) *o->add_listen() = peaks;
    for (const auto& [name, value] : observer.latest.host().counter_deltas()) {
      auto base = observer.baseline.find(name);
      (*o->mutable_kernel_counters())[name] =
          value - (base == observer.baseline.end() ? 0 : base->second);
    }
  }
  SummarizeLatency(connect, report.mutable_latency()->mutable_connect());
  SummarizeLatency(total, report.mutable_latency()->mutable_total());
  SummarizeLatency(connect_call, report.mutable_latency()->mutable_connect_call());
  SummarizeLatency(loop_lag, report.mutable_latency()->mutable_loop_lag());
  double seconds = elapsed_nanos / 1e9;
  report.set_duration_s(seconds);
  report.set_achieved_rate(seconds > 0 ? report.totals().succeeded() / seconds : 0);
  *report.mutable_tuple_budget() = ComputeTupleBudget(run);
  if (final) {
    EvaluateThresholds(run, &report);
    for (std::string& sentence : Observe(report)) report.add_observations(std::move(sentence));
  }
  return report;
}

void UpdateObserver(ObserverRecord* record, const v1::ShardTelemetry& telemetry) {
  record->latest = telemetry;
  for (const v1::ListenSockets& listen : telemetry.listen()) {
    v1::ListenReport& peaks = record->peaks[listen.address()];
    peaks.set_address(listen.address());
    auto state = [&](const char* name) {
      auto it = listen.tcp_states().find(name);
      return it == listen.tcp_states().end() ? uint64_t{0} : it->second;
    };
    peaks.set_peak_time_wait(std::max(peaks.peak_time_wait(), state("TIME_WAIT")));
    peaks.set_peak_close_wait(std::max(peaks.peak_close_wait(), state("CLOSE_WAIT")));
    peaks.set_peak_established(std::max(peaks.peak_established(), state("ESTABLISHED")));
  }
}

namespace {

// The count under `key` in a map of counts (errors, TCP states); 0 when absent.
uint64_t CountOf(const google::protobuf::Map<std::string, uint64_t>& counts, const char* key) {
  auto it = counts.find(key);
  return it == counts.end() ? 0 : it->second;
}

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
    s->mutable_tcp_states()->insert(source.tcp_states().begin(), source.tcp_states().end());
  }
  shard->fresh = false;
  return point;
}

}  // namespace

void AppendSeriesPoint(RunRecord* run, const v1::RunReport& now, double t_s) {
  v1::SeriesPoint point;
  point.set_t_s(t_s);
  point.set_interval_s(t_s - (run->point_count == 0 ? 0 : run->last_point.t_s()));
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
  uint64_t time_wait = 0;
  double max_fill = 0;
  Histogram connect;
  for (size_t i = 0; i < run->shards.size(); ++i) {
    ShardRecord& shard = run->shards[i];
    in_flight += shard.latest.in_flight();
    connect.Merge(HistogramFromProto(shard.latest.connect_latency()));
    v1::AgentPoint* agent = point.add_agents();
    *agent = MakeAgentPoint(&shard, now.agents(i));
    for (const v1::SourcePoint& source : agent->sources()) {
      time_wait += CountOf(source.tcp_states(), "TIME_WAIT");
      if (agent->port_range_size() > 0) {
        max_fill = std::max(max_fill,
                            static_cast<double>(source.ports_in_use()) / agent->port_range_size());
      }
    }
  }
  for (const ObserverRecord& observer : run->observers) {
    v1::ObserverPoint* o = point.add_observers();
    o->set_name(observer.name);
    for (const v1::ListenSockets& listen : observer.latest.listen()) {
      for (const auto& [state, count] : listen.tcp_states()) {
        (*o->mutable_tcp_states())[state] += count;
      }
    }
  }
  point.set_in_flight(in_flight);
  point.set_time_wait(time_wait);
  point.set_max_port_fill(max_fill);
  Histogram interval = connect;
  interval.Subtract(run->series_connect);
  point.set_connect_p50_ms(interval.Percentile(50) / 1e6);
  point.set_connect_p90_ms(interval.Percentile(90) / 1e6);
  point.set_connect_p99_ms(interval.Percentile(99) / 1e6);
  run->series_connect = connect;
  run->series_totals = now.totals();
  run->last_point = std::move(point);
  ++run->point_count;
}

}  // namespace churnlab

namespace churnlab {
namespace {

constexpr double kTimeWaitSeconds = 60;  // Linux: fixed at compile time (TCP_TIMEWAIT_LEN)

bool AllLoopback(const v1::RunSpec& spec) {
  for (const std::string& target : spec.targets()) {
    absl::StatusOr<SocketAddress> t = SocketAddress::ParseIpPort(target);
    if (!t.ok() || !t->is_loopback()) return false;
  }
  return true;
}

// The counter over the agents' hosts, or over the observers' when they saw more (the server's
// host is where listen overflows happen).
int64_t CounterOf(const v1::RunReport& report, const char* key) {
  auto it = report.kernel_counters().find(key);
  int64_t agents = it == report.kernel_counters().end() ? 0 : it->second;
  int64_t observers = 0;
  for (const v1::ObserverReport& o : report.observers()) {
    auto c = o.kernel_counters().find(key);
    if (c != o.kernel_counters().end()) observers += c->second;
  }
  return std::max(agents, observers);
}

void ObserveServerSide(const v1::RunReport& report, std::vector<std::string>* out) {
  for (const v1::ObserverReport& o : report.observers()) {
    for (const v1::ListenReport& l : o.listen()) {
      // A few sockets between the client's FIN and the server's close are normal at speed; a
      // leak holds a good share of the connections.
      uint64_t leak_floor = std::max<uint64_t>(50, report.totals().attempted() / 100);
      if (l.peak_close_wait() >= leak_floor) {
        out->push_back(absl::StrFormat(
            "the server %s (%s) held up to %d sockets in CLOSE_WAIT: it does not close after the "
            "client's FIN, so its sockets (and the clients' in FIN_WAIT2) pile up",
            o.name(), l.address(), l.peak_close_wait()));
      }
      if (l.peak_time_wait() > 0) {
        out->push_back(absl::StrFormat(
            "TIME_WAIT landed on the server %s (%s, up to %d at once): the server closed first",
            o.name(), l.address(), l.peak_time_wait()));
      }
    }
  }
}

// Connect p99 while the fullest source's port range was over 80% full, against under 50%.
void ObserveConnectSlowdown(const v1::RunReport& report, std::vector<std::string>* out) {
  double low_sum = 0;
  int low_n = 0;
  double high_max = 0;
  double fill_at_max = 0;
  for (const v1::SeriesPoint& p : report.series()) {
    if (p.connect_p99_ms() <= 0) continue;
    if (p.max_port_fill() < 0.5) {
      low_sum += p.connect_p99_ms();
      ++low_n;
    } else if (p.max_port_fill() >= 0.8 && p.connect_p99_ms() > high_max) {
      high_max = p.connect_p99_ms();
      fill_at_max = p.max_port_fill();
    }
  }
  if (low_n == 0 || high_max == 0) return;
  double low = low_sum / low_n;
  if (high_max < 5 * low) return;
  out->push_back(absl::StrFormat(
      "connect() slowed from a p99 of %.2f ms to %.2f ms as a source's port range filled to "
      "%.0f%%: the kernel searches longer for a free port. Exhaustion shows first as slow "
      "connects and a falling rate, then as EADDRNOTAVAIL.",
      low, high_max, 100 * fill_at_max));
}

}  // namespace

v1::TupleBudget ComputeTupleBudget(const RunRecord& run) {
  v1::TupleBudget budget;
  budget.set_time_wait_s(kTimeWaitSeconds);
  const v1::RunSpec& spec = run.spec;
  bool bind_reserves = spec.bind_mode() == "bind";
  uint32_t destinations = bind_reserves ? 1 : static_cast<uint32_t>(spec.targets_size());
  std::set<std::string> reuse_notes;
  for (const ShardRecord& shard : run.shards) {
    const v1::PortRange& range = shard.hello.port_range();
    uint64_t ports =
        range.high() >= range.low() && range.low() > 0 ? range.high() - range.low() + 1 : 0;
    std::vector<std::string> sources = shard.assignment.source_ips;
    if (sources.empty()) sources.push_back("auto");
    for (const std::string& ip : sources) {
      v1::SourceBudget* s = budget.add_sources();
      s->set_agent(shard.assignment.agent);
      s->set_ip(ip);
      s->set_ports(ports);
      s->set_destinations(destinations);
      s->set_budget_rate(ports * destinations / kTimeWaitSeconds);
      s->set_requested_rate(shard.assignment.rate / sources.size());
      double capacity = static_cast<double>(ports) * destinations;
      if (s->requested_rate() > s->budget_rate() && s->requested_rate() > 0) {
        s->set_exhaustion_after_s(capacity / s->requested_rate());
      }
      budget.set_total_rate(budget.total_rate() + s->budget_rate());
    }
    auto reuse = shard.hello.sysctls().find("net.ipv4.tcp_tw_reuse");
    if (reuse != shard.hello.sysctls().end() &&
        (reuse->second == "1" || (reuse->second == "2" && AllLoopback(spec)))) {
      reuse_notes.insert(
          absl::StrCat("tcp_tw_reuse=", reuse->second, " on ", shard.hello.host(),
                       ": new connections may take over a TIME_WAIT tuple older than 1 s (with TCP "
                       "timestamps), which lifts this budget"));
    }
  }
  for (const std::string& note : reuse_notes) budget.add_notes(note);
  if (spec.close_policy() == "rst") {
    budget.add_notes(
        "close_policy rst: close() sends RST and nobody keeps a TIME_WAIT, so this "
        "budget does not bind (in-flight data may be lost)");
  } else if (spec.close_policy() == "server-fin") {
    budget.add_notes(
        "close_policy server-fin: the server closes first and keeps the TIME_WAIT; "
        "the clients' ports are free at once, the server's side carries the state");
  }
  if (bind_reserves) {
    budget.add_notes(
        "bind mode bind: bind(ip, 0) reserves a port for every destination, so more "
        "destinations do not raise the budget; no-port lets each destination reuse it");
  }
  return budget;
}

std::vector<std::string> Observe(const v1::RunReport& report) {
  std::vector<std::string> out;
  double duration_s =
      google::protobuf::util::TimeUtil::DurationToNanoseconds(report.spec().duration()) / 1e9;
  for (const v1::AgentReport& agent : report.agents()) {
    if (agent.lost_after_s() <= 0) continue;
    double share = 0;
    for (const v1::SourceBudget& s : report.tuple_budget().sources()) {
      if (s.agent() == agent.name()) share += s.requested_rate();
    }
    double missing_s = std::max(0.0, duration_s - agent.lost_after_s());
    if (agent.share_handed_on()) {
      out.push_back(absl::StrFormat(
          "%s was lost %.1f s into the run; its counts are those it last reported. Its share "
          "(%.0f connections/s) was handed to the agents still running for the remaining "
          "%.1f s (rebalance), so the run kept its requested rate.",
          agent.name(), agent.lost_after_s(), share, missing_s));
      continue;
    }
    out.push_back(absl::StrFormat(
        "%s was lost %.1f s into the run; its counts are those it last reported. Its share "
        "(%.0f connections/s) went unrun for the remaining %.1f s, about %.0f connections "
        "fewer than asked; the other agents ran their own shares unchanged%s.",
        agent.name(), agent.lost_after_s(), share, missing_s, share * missing_s,
        report.spec().rebalance() ? " (no agent was still running to take it)"
                                  : " (--rebalance hands such a share on)"));
  }
  uint64_t no_port = CountOf(report.errors(), "EADDRNOTAVAIL");
  if (no_port > 0) {
    std::string worst;
    double worst_fill = 0;
    for (const v1::AgentReport& agent : report.agents()) {
      for (const v1::SourceReport& s : agent.sources()) {
        if (s.port_range_size() == 0) continue;
        double fill = static_cast<double>(s.peak_ports_in_use()) / s.port_range_size();
        if (fill >= worst_fill) {
          worst_fill = fill;
          worst = absl::StrFormat("%s (%s) peaked at %d of %d ports in use, %d in TIME_WAIT",
                                  s.ip(), agent.name(), s.peak_ports_in_use(), s.port_range_size(),
                                  s.peak_time_wait());
        }
      }
    }
    out.push_back(absl::StrCat(
        no_port, " connects failed with EADDRNOTAVAIL: no local port was left for the four-tuple",
        worst.empty() ? "" : absl::StrCat("; ", worst),
        ". More source IPs, destination IPs or ports raise the limit; so do RST close or "
        "pooling."));
  }
  if (CountOf(report.errors(), "EADDRINUSE") > 0) {
    out.push_back(
        "bind() found no free port (EADDRINUSE): bind(ip, 0) reserves a port for every "
        "destination; bind mode no-port defers the choice to connect()");
  }
  int64_t overflows = CounterOf(report, "ListenOverflows") + CounterOf(report, "ListenDrops");
  uint64_t timeouts =
      CountOf(report.errors(), "connect-timeout") + CountOf(report.errors(), "ETIMEDOUT");
  if (overflows > 0) {
    out.push_back(absl::StrCat(
        "the listen queue overflowed (ListenOverflows/ListenDrops +", overflows,
        "): on Linux a full backlog drops SYNs and handshake ACKs silently, so clients see SYN "
        "retransmits, slow connects and timeouts (",
        timeouts,
        " here), not \"connection refused\" (unless tcp_abort_on_overflow=1, which answers RST)"));
  }
  if (CountOf(report.errors(), "ECONNREFUSED") > 0) {
    out.push_back(
        "ECONNREFUSED: nothing listened on the target port, or it answered RST "
        "(tcp_abort_on_overflow=1 with a full backlog)");
  }
  if (report.totals().missed_starts() > 0) {
    out.push_back(absl::StrCat(report.totals().missed_starts(),
                               " scheduled starts were skipped because max_in_flight connections "
                               "were open: the target answered slower than the offered load"));
  }
  ObserveConnectSlowdown(report, &out);
  ObserveServerSide(report, &out);
  return out;
}

}  // namespace churnlab
