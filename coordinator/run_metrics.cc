#include "coordinator/run_metrics.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "proto/tcp_state_counts.h"
#include "proto/telemetry_codec.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

// A name keeps the ids of its last ended runs, to ignore updates that come after the end.
constexpr size_t kEndedIdsKept = 64;
// agent and source_ip of the series that sums the sources past Options::max_sources.
constexpr char kFoldedLabel[] = "_other";

enum CounterFamily : int {
  kAttempted,
  kSucceeded,
  kFailed,
  kRequests,
  kMissedStarts,
  kLateStarts,
  kKernelCounter,
  kTargetKernelCounter,
  kTlsHandshakes,
  kHttpResponses,
  kCounterFamilyCount,
};

struct FamilySpec {
  const char* name;
  const char* help;
};

// Indexed by CounterFamily.
constexpr FamilySpec kCounterFamilies[kCounterFamilyCount] = {
    {"churnlab_connections_attempted_total",
     "Connections attempted, per agent and source IP, over every run of the name."},
    {"churnlab_connections_succeeded_total",
     "Connections that completed, per agent and source IP, over every run of the name."},
    {"churnlab_connections_failed_total",
     "Connections that failed, per agent, source IP and error (errno name or engine outcome), "
     "over every run of the name."},
    {"churnlab_requests_total",
     "Request/response exchanges completed, over every run of the name."},
    {"churnlab_starts_missed_total",
     "Open model: starts skipped because max_in_flight connections were open."},
    {"churnlab_starts_late_total",
     "Open model: starts skipped because the engine came to them after the connect timeout."},
    {"churnlab_kernel_counter_total",
     "Kernel TCP counters (/proc/net/netstat and snmp names) on the agents' hosts during the "
     "name's runs, each kernel counted once."},
    {"churnlab_target_kernel_counter_total",
     "Kernel TCP counters on the target's host (its observer) during the name's runs."},
    {"churnlab_tls_handshakes_total",
     "TLS handshakes completed, per agent, source IP and kind (full, or resumed: the server "
     "took the offered session), over every run of the name."},
    {"churnlab_http_responses_total", "HTTP responses by status code, over every run of the name."},
};

void AddCount(RunMetrics::Counters* c, CounterFamily family, MetricLabels labels, double value) {
  c->values[{family, std::move(labels)}] += value;
}

MetricLabels With(const MetricLabels& labels, const char* key, const std::string& value) {
  MetricLabels out = labels;
  out.emplace_back(key, value);
  return out;
}

RunMetrics::HistogramCounts HistogramCountsOf(const v1::LatencyHistogram& h) {
  RunMetrics::HistogramCounts out;
  const std::vector<int64_t>& bounds = LatencyHistogramBoundsNanos();
  out.buckets.assign(bounds.size(), 0);
  // By bound: a report stored with fewer bounds (one an octave, a subset of these) gives each
  // bound the count at its largest stored bound not above it, a count that is still true.
  int stored = 0;
  double below = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    const double le_ms = bounds[i] / 1e6;
    for (; stored < h.buckets_size() && h.buckets(stored).le_ms() <= le_ms * (1 + 1e-9); ++stored) {
      below = static_cast<double>(h.buckets(stored).count());
    }
    out.buckets[i] = below;
  }
  out.count = static_cast<double>(h.count());
  out.sum_s = h.sum_ms() / 1e3;
  return out;
}

// Gives the sources of `r` series of their own while fewer than `max` have them: those shown
// already keep theirs, so a series, once there, stays (a counter never moves to `_other`).
void NoteSources(const v1::RunReport& r, size_t max, std::set<RunMetrics::SourceKey>* shown) {
  for (const v1::AgentReport& agent : r.agents()) {
    for (const v1::SourceReport& s : agent.sources()) {
      if (shown->size() >= max) return;
      shown->insert({agent.name(), s.ip()});
    }
  }
}

// The labels a source's counts go under: its own, or the one series past the cap.
MetricLabels SourceLabels(const std::string& agent, const std::string& ip,
                          const std::set<RunMetrics::SourceKey>& shown) {
  if (shown.count({agent, ip}) > 0) return {{"agent", agent}, {"source_ip", ip}};
  return {{"agent", kFoldedLabel}, {"source_ip", kFoldedLabel}};
}

RunMetrics::Counters CountersOf(const v1::RunReport& r,
                                const std::set<RunMetrics::SourceKey>& shown) {
  RunMetrics::Counters c;
  for (const v1::AgentReport& agent : r.agents()) {
    for (const v1::SourceReport& s : agent.sources()) {
      const MetricLabels labels = SourceLabels(agent.name(), s.ip(), shown);
      AddCount(&c, kAttempted, labels, static_cast<double>(s.attempted()));
      AddCount(&c, kSucceeded, labels, static_cast<double>(s.succeeded()));
      if (s.tls_full() + s.tls_resumed() > 0) {
        AddCount(&c, kTlsHandshakes, With(labels, "kind", "full"),
                 static_cast<double>(s.tls_full()));
        AddCount(&c, kTlsHandshakes, With(labels, "kind", "resumed"),
                 static_cast<double>(s.tls_resumed()));
      }
      for (const auto& [error, count] : s.errors()) {
        MetricLabels with_error = labels;
        with_error.emplace_back("error", error);
        AddCount(&c, kFailed, std::move(with_error), static_cast<double>(count));
      }
    }
  }
  AddCount(&c, kRequests, {}, static_cast<double>(r.totals().requests()));
  for (const auto& [code, n] : r.totals().status_codes()) {
    AddCount(&c, kHttpResponses, {{"code", std::to_string(code)}}, static_cast<double>(n));
  }
  AddCount(&c, kMissedStarts, {}, static_cast<double>(r.totals().missed_starts()));
  AddCount(&c, kLateStarts, {}, static_cast<double>(r.totals().late_starts()));
  // Deltas of kernel counters over the run: they only grow (a negative one means the observer
  // restarted mid-run, and counts as nothing).
  for (const auto& [counter, delta] : r.kernel_counters()) {
    AddCount(&c, kKernelCounter, {{"counter", counter}}, std::max<double>(0, delta));
  }
  for (const v1::ObserverReport& o : r.observers()) {
    for (const auto& [counter, delta] : o.kernel_counters()) {
      AddCount(&c, kTargetKernelCounter, {{"observer", o.name()}, {"counter", counter}},
               std::max<double>(0, delta));
    }
  }
  c.connect = HistogramCountsOf(r.latency().connect_histogram());
  c.tls_handshake = HistogramCountsOf(r.latency().tls_handshake_histogram());
  return c;
}

v1::RunReport Trimmed(const v1::RunReport& report) {
  v1::RunReport out = report;
  out.clear_series();
  if (report.series_size() > 0) *out.add_series() = report.series(report.series_size() - 1);
  out.clear_observations();
  out.mutable_tuple_budget()->clear_sources();
  out.mutable_tuple_budget()->clear_notes();
  return out;
}

// Every family /metrics shows of runs, in the order they are written.
struct Families {
  MetricFamily info{"churnlab_run_info", "gauge",
                    "1 for the run a name's series show now: its newest run, running or ended."};
  MetricFamily running{"churnlab_run_running", "gauge", "1 while the run runs, 0 once it ended."};
  MetricFamily passed{"churnlab_run_passed", "gauge",
                      "Once the run ended: 1 when its verdict is pass, 0 when fail."};
  MetricFamily start{"churnlab_run_start_time_seconds", "gauge",
                     "When the run started, seconds since the Unix epoch."};
  MetricFamily elapsed{"churnlab_run_elapsed_seconds", "gauge",
                       "How long the run has been going (its length once ended)."};
  MetricFamily planned{"churnlab_run_planned_duration_seconds", "gauge",
                       "The run's load duration from its spec."};
  MetricFamily requested{"churnlab_run_requested_connections_per_second", "gauge",
                         "The run's requested new-connection rate."};
  MetricFamily achieved{"churnlab_run_achieved_connections_per_second", "gauge",
                        "Successful connections per second over the run so far."};
  MetricFamily budget{"churnlab_run_tuple_budget_connections_per_second", "gauge",
                      "The tuple budget: new connections/s the run's source IPs sustain before "
                      "their four-tuples run out (ports x destinations / TIME_WAIT, or the "
                      "tcp_tw_reuse delay)."};
  MetricFamily in_flight{"churnlab_run_connections_in_flight", "gauge",
                         "Connections open at the newest series point."};
  MetricFamily observed{"churnlab_run_threshold_observed", "gauge",
                        "Once the run ended: the value each threshold was judged on."};
  MetricFamily threshold_passed{"churnlab_run_threshold_passed", "gauge",
                                "Once the run ended: 1 for each threshold that passed, else 0."};
  MetricFamily ports{"churnlab_source_ports_in_use", "gauge",
                     "Local ports the source IP has in use toward the run's targets (TIME_WAIT "
                     "included)."};
  MetricFamily range{"churnlab_source_port_range_size", "gauge",
                     "Size of the agent's ip_local_port_range."};
  MetricFamily states{"churnlab_source_tcp_sockets", "gauge",
                      "Sockets from the source IP toward the run's targets, by TCP state."};
  MetricFamily folded{"churnlab_metrics_sources_folded", "gauge",
                      "Sources (agent, source IP) of the name's newest run without series of "
                      "their own: past the coordinator's cap, their counts are summed under "
                      "agent=\"_other\", source_ip=\"_other\" and their gauges left out."};
  MetricFamily target_states{"churnlab_target_tcp_sockets", "gauge",
                             "The target's sockets on its listening addresses, by TCP state, "
                             "as its observer reports them."};
  std::vector<MetricFamily> counters;
  MetricFamily latency{"churnlab_connect_latency_seconds", "histogram",
                       "connect() to the handshake completing, over every run of the name."};
  MetricFamily tls_latency{"churnlab_tls_handshake_latency_seconds", "histogram",
                           "The TLS handshake, from the TCP handshake's end, over every run of "
                           "the name (protocols tls and https)."};

  Families() {
    for (const FamilySpec& spec : kCounterFamilies) {
      counters.emplace_back(spec.name, "counter", spec.help);
    }
  }
  void AppendTo(std::string* out) const {
    for (const MetricFamily* f : {&info, &running, &passed, &start, &elapsed, &planned, &requested,
                                  &achieved, &budget, &in_flight, &observed, &threshold_passed,
                                  &ports, &range, &states, &folded, &target_states}) {
      f->AppendTo(out);
    }
    for (const MetricFamily& f : counters) f.AppendTo(out);
    latency.AppendTo(out);
    tls_latency.AppendTo(out);
  }
};

// What the gauges of a name's newest run need of the name: the states seen so far (a state that
// empties shows 0 rather than vanishing) and the sources that have series of their own.
struct NameView {
  const std::set<TcpState>* source_states;
  const std::set<TcpState>* target_states;
  const std::set<RunMetrics::SourceKey>* shown;
};

double StateCount(const v1::TcpStateCounts& states, TcpState state) {
  return static_cast<double>(CountOf(states, state));
}

// Every state of `seen` for each source and observer of the run's newest point (0 for those it
// does not hold).
void AddSourceGauges(const MetricLabels& name, const v1::RunReport& r, const NameView& view,
                     Families* f) {
  const v1::SeriesPoint* now = r.series_size() > 0 ? &r.series(r.series_size() - 1) : nullptr;
  const std::set<TcpState>& source_states = *view.source_states;
  const std::set<TcpState>& target_states = *view.target_states;
  uint64_t folded = 0;
  for (const v1::AgentReport& agent : r.agents()) {
    const v1::AgentPoint* agent_now = nullptr;
    for (int i = 0; now != nullptr && i < now->agents_size(); ++i) {
      if (now->agents(i).name() == agent.name()) agent_now = &now->agents(i);
    }
    for (const v1::SourceReport& source : agent.sources()) {
      if (view.shown->count({agent.name(), source.ip()}) == 0) {
        ++folded;
        continue;
      }
      MetricLabels labels = With(With(name, "agent", agent.name()), "source_ip", source.ip());
      f->range.Add(labels, static_cast<double>(source.port_range_size()));
      if (agent_now == nullptr) continue;
      for (const v1::SourcePoint& point : agent_now->sources()) {
        if (point.ip() != source.ip()) continue;
        f->ports.Add(labels, static_cast<double>(point.ports_in_use()));
        for (TcpState state : source_states) {
          f->states.Add(With(labels, "state", TcpStateName(state)),
                        StateCount(point.tcp_states(), state));
        }
      }
    }
  }
  f->folded.Add(name, static_cast<double>(folded));
  if (now == nullptr) return;
  for (const v1::ObserverPoint& o : now->observers()) {
    for (TcpState state : target_states) {
      f->target_states.Add(With(With(name, "observer", o.name()), "state", TcpStateName(state)),
                           StateCount(o.tcp_states(), state));
    }
  }
}

void AddRunGauges(const MetricLabels& name, const v1::RunReport& r, bool ended,
                  const NameView& view, Families* f) {
  f->info.Add(With(name, "run_id", r.run_id()), 1);
  f->running.Add(name, ended ? 0 : 1);
  if (ended) f->passed.Add(name, r.verdict() == v1::RunReport::VERDICT_PASS ? 1 : 0);
  if (r.has_start_time()) {
    f->start.Add(name, TimeUtil::TimestampToNanoseconds(r.start_time()) / 1e9);
  }
  f->elapsed.Add(name, r.duration_s());
  f->planned.Add(name, TimeUtil::DurationToNanoseconds(r.spec().duration()) / 1e9);
  f->requested.Add(name, r.requested_rate());
  f->achieved.Add(name, r.achieved_rate());
  f->budget.Add(name, r.tuple_budget().total_rate());
  if (r.series_size() > 0) {
    f->in_flight.Add(name, static_cast<double>(r.series(r.series_size() - 1).in_flight()));
  }
  for (const v1::ThresholdResult& t : r.thresholds()) {
    f->observed.Add(With(name, "threshold", t.expression()), t.observed());
    f->threshold_passed.Add(With(name, "threshold", t.expression()), t.passed() ? 1 : 0);
  }
  AddSourceGauges(name, r, view, f);
}

void AddHistogram(const MetricLabels& name, const RunMetrics::HistogramCounts& h,
                  MetricFamily* family) {
  const std::vector<int64_t>& bounds = LatencyHistogramBoundsNanos();
  for (size_t i = 0; i < bounds.size() && i < h.buckets.size(); ++i) {
    family->Add(With(name, "le", LeSeconds(bounds[i])), h.buckets[i], "_bucket");
  }
  family->Add(With(name, "le", "+Inf"), h.count, "_bucket");
  family->Add(name, h.sum_s, "_sum");
  family->Add(name, h.count, "_count");
}

void AddCounters(const MetricLabels& name, const RunMetrics::Counters& c, Families* f) {
  for (const auto& [key, value] : c.values) {
    MetricLabels labels = name;
    labels.insert(labels.end(), key.second.begin(), key.second.end());
    f->counters[key.first].Add(labels, value);
  }
  AddHistogram(name, c.connect, &f->latency);
  // Only names that ran TLS have the family's series.
  if (c.tls_handshake.count > 0) AddHistogram(name, c.tls_handshake, &f->tls_latency);
}

// The TCP states a point holds, on the agents' side and on the target's.
void NoteStates(const v1::SeriesPoint& point, std::set<TcpState>* source_states,
                std::set<TcpState>* target_states) {
  auto note = [](const v1::TcpStateCounts& counts, std::set<TcpState>* seen) {
    for (TcpState state : AllTcpStates()) {
      if (CountOf(counts, state) > 0) seen->insert(state);
    }
  };
  for (const v1::AgentPoint& agent : point.agents()) {
    for (const v1::SourcePoint& source : agent.sources()) {
      note(source.tcp_states(), source_states);
    }
  }
  for (const v1::ObserverPoint& o : point.observers()) {
    note(o.tcp_states(), target_states);
  }
}

}  // namespace

void RunMetrics::HistogramCounts::Add(const HistogramCounts& other) {
  if (buckets.size() < other.buckets.size()) buckets.resize(other.buckets.size(), 0);
  for (size_t i = 0; i < other.buckets.size(); ++i) buckets[i] += other.buckets[i];
  count += other.count;
  sum_s += other.sum_s;
}

void RunMetrics::Counters::Add(const Counters& other) {
  for (const auto& [key, value] : other.values) values[key] += value;
  connect.Add(other.connect);
  tls_handshake.Add(other.tls_handshake);
}

void RunMetrics::OnReport(const v1::RunReport& report, bool final) {
  v1::RunReport trimmed = Trimmed(report);
  std::lock_guard<std::mutex> lock(mu_);
  Name& name = names_[report.spec().name()];
  if (name.ended.count(report.run_id()) > 0) return;  // a late update of a run that ended
  // Sources get their series as they first appear, in any run of the name, progress or final.
  NoteSources(report, options_.max_sources, &name.shown_sources);
  Counters counts = final ? CountersOf(report, name.shown_sources) : Counters();
  Entry& entry = name.runs[report.run_id()];
  if (entry.seq == 0) entry.seq = next_seq_++;
  if (trimmed.series_size() > 0) {
    NoteStates(trimmed.series(0), &name.source_states, &name.target_states);
  }
  entry.report = std::move(trimmed);
  if (!final) return;
  entry.final = true;
  name.finished.Add(counts);
  name.ended.insert(report.run_id());
  if (name.ended.size() > kEndedIdsKept) name.ended.erase(name.ended.begin());  // ids sort by time
  name.ended_at = options_.now();
  // Of the ended runs, only the newest still shows (when it is the newest run of the name).
  uint64_t newest_ended = 0;
  for (const auto& [id, e] : name.runs) {
    if (e.final) newest_ended = std::max(newest_ended, e.seq);
  }
  for (auto it = name.runs.begin(); it != name.runs.end();) {
    it = it->second.final && it->second.seq != newest_ended ? name.runs.erase(it) : std::next(it);
  }
}

void RunMetrics::Expire(absl::Time now) {
  auto idle = [](const Name& n) {
    return std::all_of(n.runs.begin(), n.runs.end(), [](const auto& r) { return r.second.final; });
  };
  for (auto it = names_.begin(); it != names_.end();) {
    bool expired = idle(it->second) && now - it->second.ended_at > options_.expiry;
    it = expired ? names_.erase(it) : std::next(it);
  }
  while (names_.size() > options_.max_names) {
    auto oldest = names_.end();
    for (auto it = names_.begin(); it != names_.end(); ++it) {
      if (idle(it->second) &&
          (oldest == names_.end() || it->second.ended_at < oldest->second.ended_at)) {
        oldest = it;
      }
    }
    if (oldest == names_.end()) return;  // every name has a run in flight
    names_.erase(oldest);
  }
}

void RunMetrics::AppendTo(std::string* out, int* running) {
  Families families;
  *running = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Expire(options_.now());
    for (const auto& [name, state] : names_) {
      const MetricLabels labels = {{"name", name}};
      Counters counters = state.finished;
      const Entry* newest = nullptr;
      for (const auto& [id, entry] : state.runs) {
        if (!entry.final) {
          counters.Add(CountersOf(entry.report, state.shown_sources));
          ++*running;
        }
        if (newest == nullptr || entry.seq > newest->seq) newest = &entry;
      }
      if (newest != nullptr) {
        AddRunGauges(labels, newest->report, newest->final,
                     {&state.source_states, &state.target_states, &state.shown_sources}, &families);
      }
      AddCounters(labels, counters, &families);
    }
  }
  families.AppendTo(out);
}

}  // namespace churnlab
