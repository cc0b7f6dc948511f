// What /metrics says about runs, kept from the reports the coordinator sends its watchers, so
// that a run's final values stay after it ends. Series are labelled by the run's name (its
// spec's `name`; runs without one share name=""), never by its id, so they carry on from run to
// run; churnlab_run_info{name, run_id} says which run a name's series show.
//  - Gauges (rates, elapsed time, ports, TCP states, thresholds) show the newest run of each
//    name: live while it runs, its final values once it has ended, until the next run of that
//    name reports.
//  - Counters (connections, failures by error, requests, skipped starts, kernel counters, the
//    connect-latency histogram) add up every run of the name since the coordinator started, so
//    they only grow, and increase() over a run's time is that run's count at any scrape
//    interval. They start again from 0 only as Prometheus expects of a counter: when the
//    coordinator restarts (churnlab_coordinator_start_time_seconds changes) or after the name
//    expired and ran again.
//  - A name whose newest run ended more than `expiry` ago is dropped, series and all.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "churnlab/v1/report.pb.h"
#include "common/clock.h"
#include "common/tcp_state.h"
#include "http/prometheus_text.h"

namespace churnlab {

class RunMetrics {
 public:
  struct Options {
    absl::Duration expiry = absl::Hours(24);
    // At most this many names are kept; beyond, those whose runs ended longest ago go first.
    size_t max_names = 1000;
    // When runs ended, for expiry: monotonic, so a wall-clock step expires nothing early.
    std::function<absl::Time()> now = [] { return absl::FromUnixNanos(SystemClock().NowNanos()); };
    // At most this many sources (agent, source IP) of a name have series of their own, the
    // first seen; the counts of the rest are summed under agent="_other", source_ip="_other",
    // their gauges are left out, and churnlab_metrics_sources_folded says how many.
    size_t max_sources = 1000;
  };

  explicit RunMetrics(Options options) : options_(std::move(options)) {}

  // Every update of every run, as Coordinator::WatchAll gives them (`final` on the last one).
  // Thread-safe and cheap: it keeps a trimmed copy of the report (no series but the newest
  // point), and on the final one adds the run's counts to its name's counters.
  void OnReport(const v1::RunReport& report, bool final);

  // The runs' families, in exposition format; `running` gets the number of runs in flight.
  void AppendTo(std::string* out, int* running);

  using SourceKey = std::pair<std::string, std::string>;  // agent, source IP

  // A latency histogram of one name, summed over runs.
  struct HistogramCounts {
    std::vector<double> buckets;  // cumulative, at LatencyHistogramBoundsNanos()
    double count = 0;
    double sum_s = 0;
    void Add(const HistogramCounts& other);
  };
  // Counters of one name (its label sets without `name`), summed over runs.
  struct Counters {
    std::map<std::pair<int, MetricLabels>, double> values;  // by family index, labels
    HistogramCounts connect;                                // connect() to the TCP handshake's end
    HistogramCounts tls_handshake;                          // the TLS handshake (tls, https)
    void Add(const Counters& other);
  };

 private:
  struct Entry {
    uint64_t seq = 0;  // in the order runs were first reported: the newest has the highest
    bool final = false;
    v1::RunReport report;  // trimmed: its newest series point only
  };
  struct Name {
    std::map<std::string, Entry> runs;  // the runs in flight and the newest that ended
    std::set<std::string> ended;        // ids of ended runs, to ignore late updates
    Counters finished;                  // the ended runs' final counts
    // TCP states seen so far on the agents' and the target's side: a state that empties shows
    // 0 rather than vanishing.
    std::set<TcpState> source_states;
    std::set<TcpState> target_states;
    std::set<SourceKey> shown_sources;  // those with series of their own, max_sources at most
    absl::Time ended_at = absl::InfinitePast();
  };

  void Expire(absl::Time now);

  Options options_;
  std::mutex mu_;
  std::map<std::string, Name> names_;
  uint64_t next_seq_ = 1;
};

}  // namespace churnlab
