#include "cli/report_format.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "analysis/tuple_budget.h"
#include "common/terminal_text.h"
#include "proto/message_json.h"
#include "proto/report_export.h"
#include "proto/run_spec.h"
#include "proto/telemetry_codec.h"
#include "proto/threshold.h"

namespace churnlab {
namespace {

// "EADDRNOTAVAIL 512, connect-timeout 3", biggest first.
std::string FormatErrors(const google::protobuf::Map<std::string, uint64_t>& errors, size_t max) {
  std::vector<std::pair<std::string, uint64_t>> sorted(errors.begin(), errors.end());
  if (sorted.empty()) return "none";
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::vector<std::string> parts;
  for (size_t i = 0; i < sorted.size() && i < max; ++i) {
    parts.push_back(absl::StrCat(TerminalSafe(sorted[i].first), " ", sorted[i].second));
  }
  if (sorted.size() > max) parts.push_back(absl::StrCat("+", sorted.size() - max, " more"));
  return absl::StrJoin(parts, ", ");
}

// "  on Windows: EADDRNOTAVAIL is 10048 WSAEADDRINUSE (SocketError...) "Only one usage ...""
std::string WindowsLines(const v1::RunReport& r) {
  std::map<std::string, v1::WindowsError> sorted(r.windows_errors().begin(),
                                                 r.windows_errors().end());
  std::string out;
  for (const auto& [key, w] : sorted) {
    absl::StrAppendFormat(&out, "    on Windows %s is %d %s (SocketError.%s) \"%s\"\n",
                          TerminalSafe(key), w.code(), TerminalSafe(w.name()),
                          TerminalSafe(w.dotnet_name()), TerminalSafe(w.message()));
  }
  return out;
}

// "EADDRNOTAVAIL: 10048 WSAEADDRINUSE, ..." for compare's table.
std::string WindowsCodes(const v1::RunReport& r) {
  std::map<std::string, v1::WindowsError> sorted(r.windows_errors().begin(),
                                                 r.windows_errors().end());
  std::vector<std::string> parts;
  for (const auto& [key, w] : sorted) {
    parts.push_back(absl::StrCat(TerminalSafe(key), ": ", w.code(), " ", TerminalSafe(w.name())));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, ", ");
}

// Sockets closed by the client still waiting for the server's FIN, summed over sources.
uint64_t PeakFinWait2(const v1::RunReport& r) {
  uint64_t sum = 0;
  for (const v1::AgentReport& agent : r.agents()) {
    for (const v1::SourceReport& s : agent.sources()) sum += s.peak_fin_wait2();
  }
  return sum;
}

uint64_t PeakServerCloseWait(const v1::RunReport& r) {
  uint64_t sum = 0;
  for (const v1::ObserverReport& o : r.observers()) {
    for (const v1::ListenReport& l : o.listen()) sum += l.peak_close_wait();
  }
  return sum;
}

std::string RequestsPerConnection(const v1::RunReport& r) {
  return absl::StrFormat("%.1f (spec %d)", r.totals().requests_per_connection(),
                         std::max<int64_t>(1, r.spec().requests_per_connection()));
}

// A p99 in ms, or "none" for a run that made no connection to measure (a 0.00ms would read as
// the best latency of all).
std::string P99(const v1::LatencySummary& s) {
  return s.count() == 0 ? "none" : absl::StrFormat("%.2fms", s.p99_ms());
}

std::string Latency(const char* name, const v1::LatencySummary& s) {
  if (s.count() == 0) return absl::StrFormat("  %-10s (none)\n", name);
  return absl::StrFormat("  %-10s p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms\n", name,
                         s.p50_ms(), s.p90_ms(), s.p99_ms(), s.max_ms());
}

}  // namespace

std::string FormatTupleBudget(const v1::RunReport& r) {
  const v1::TupleBudget& b = r.tuple_budget();
  if (b.sources_size() == 0) return "";
  ClosePolicy close = ToEngine(r.spec().close_policy()).value_or(ClosePolicy::kClientFin);
  std::string out = absl::StrFormat(
      "\n  tuple budget (close %s, TIME_WAIT %.0fs): %.0f new conn/s sustainable, %.0f "
      "requested, %.0f achieved\n",
      ClosePolicyName(close), b.time_wait_s(), b.total_rate(), r.requested_rate(),
      r.achieved_rate());
  for (const v1::SourceBudget& s : b.sources()) {
    // A report stored before hold_s existed held every tuple for TIME_WAIT.
    double hold = s.hold_s() > 0 ? s.hold_s() : b.time_wait_s();
    absl::StrAppendFormat(&out,
                          "    %-12s %-16s %6d ports x %d dest / %gs = %7.0f/s, asked %7.0f/s",
                          TerminalSafe(s.agent()), TerminalSafe(s.ip()), s.ports(),
                          s.destinations(), hold, s.budget_rate(), s.requested_rate());
    if (s.exhaustion_after_s() > 0) {
      absl::StrAppend(&out, "  -> ports would run out after ~",
                      analysis::ApproxSeconds(s.exhaustion_after_s()), "s");
    }
    absl::StrAppend(&out, "\n");
  }
  if (!b.summary().empty()) absl::StrAppend(&out, "    ", TerminalSafe(b.summary()), "\n");
  for (const std::string& note : b.notes()) {
    absl::StrAppend(&out, "    note: ", TerminalSafe(note), "\n");
  }
  return out;
}

std::string FormatConcurrency(const v1::RunReport& r) {
  if (!r.has_concurrency()) return "";
  const v1::ConcurrencyReport& c = r.concurrency();
  std::string out = absl::StrFormat(
      "\n  held connections: peak %d at once by the kernel's count (%d by the engines'); "
      "%.0f bytes kernel + %.0f bytes user per connection\n",
      c.peak_established(), c.peak_in_flight(), c.kernel_bytes_per_connection(),
      c.user_bytes_per_connection());
  for (const v1::SourceConcurrency& s : c.sources()) {
    absl::StrAppendFormat(&out, "    %-12s %-16s %8d established  %8d ports of %d\n",
                          TerminalSafe(s.agent()), TerminalSafe(s.ip()), s.peak_established(),
                          s.peak_ports_in_use(), s.port_bound());
  }
  absl::StrAppendFormat(
      &out, "    limited by: %s\n    %s\n",
      c.limiter() == v1::ConcurrencyReport::LIMITER_UNSPECIFIED ? "(unknown)" : Word(c.limiter()),
      TerminalSafe(c.projection()));
  return out;
}

std::string FormatProgressLine(const v1::RunReport& report) {
  if (report.series_size() == 0) return "";
  const v1::SeriesPoint& p = report.series(report.series_size() - 1);
  // The rate asked for at this point of a ramp or stages.
  double asked = RequestedRateAt(report.spec(), p.t_s());
  // Past the run's end nothing is asked any more: the connections still open finish. (A stage
  // may ask 0/s mid-run.)
  const double duration_s =
      google::protobuf::util::TimeUtil::DurationToNanoseconds(report.spec().duration()) / 1e9;
  std::string requested = report.requested_rate() <= 0
                              ? absl::StrCat(" (concurrency ", report.spec().concurrency(), ")")
                          : p.t_s() > duration_s ? std::string(" (run over, finishing)")
                                                 : absl::StrFormat(" (of %.0f/s)", asked);
  double interval = p.interval_s() > 0 ? p.interval_s() : 1;
  std::string line =
      absl::StrFormat("%6.1fs  ok %.0f/s%s  failed %.0f/s  in-flight %d", p.t_s(),
                      p.succeeded() / interval, requested, p.failed() / interval, p.in_flight());
  if (p.connect_p99_ms() > 0) {
    absl::StrAppendFormat(&line, "  connect p99 %.2fms", p.connect_p99_ms());
  }
  if (p.connect_call_p99_ms() >= 1) {
    absl::StrAppendFormat(&line, " (in connect() %.2fms)", p.connect_call_p99_ms());
  }
  absl::StrAppendFormat(&line, "  TIME_WAIT %d", p.time_wait());
  if (p.max_port_fill() >= 0.05) {
    absl::StrAppendFormat(&line, "  ports %.0f%%", 100 * p.max_port_fill());
  }
  // TIME_WAIT and ports come from the socket census; a busy host spaces it out.
  if (p.census_age_s() > kStaleCensusSeconds) {
    absl::StrAppendFormat(&line, " (census %.0f s old)", p.census_age_s());
  }
  // Counts, not rates: how many of each in this interval.
  if (p.failed() > 0) {
    absl::StrAppendFormat(&line, "  [%s in %.1fs]", FormatErrors(p.errors(), 3), interval);
  }
  return line;
}

namespace {

// What each connection carried: the target names' addresses, TLS handshakes, HTTP statuses.
std::string ExchangeText(const v1::RunReport& r) {
  std::string out;
  for (const v1::ResolvedTarget& name : r.resolved_targets()) {
    std::vector<std::string> addresses;
    for (const std::string& a : name.addresses()) addresses.push_back(TerminalSafe(a));
    std::string more =
        name.addresses_used() > static_cast<uint32_t>(name.addresses_size())
            ? absl::StrFormat(" and %d more", name.addresses_used() - name.addresses_size())
            : "";
    std::string lookups =
        name.lookups() > 1
            ? absl::StrFormat(" (looked up %d times%s)", name.lookups(),
                              name.failed_lookups() > 0
                                  ? absl::StrFormat(", %d failed", name.failed_lookups())
                                  : "")
            : "";
    absl::StrAppendFormat(&out, "  target %s resolved to %s%s%s\n", TerminalSafe(name.name()),
                          absl::StrJoin(addresses, ", "), more, lookups);
  }
  const v1::Totals& t = r.totals();
  const v1::RunSpec& spec = r.spec();
  if (spec.protocol() == v1::PROTOCOL_TLS || spec.protocol() == v1::PROTOCOL_HTTPS) {
    absl::StrAppendFormat(&out,
                          "  tls handshakes %d: full %d, resumed %d (%.1f%%, %.0f%% asked)%s\n",
                          t.tls_full() + t.tls_resumed(), t.tls_full(), t.tls_resumed(),
                          100 * t.resumed_ratio(), 100 * spec.tls().resumption(),
                          spec.tls().insecure() ? "; certificates NOT verified (insecure)" : "");
  }
  if (t.status_codes_size() > 0) {
    std::map<int32_t, uint64_t> codes(t.status_codes().begin(), t.status_codes().end());
    std::vector<std::string> parts;
    for (const auto& [code, n] : codes) parts.push_back(absl::StrCat(code, " ", n));
    absl::StrAppendFormat(&out, "  responses by status: %s%s\n", absl::StrJoin(parts, ", "),
                          spec.request().expect_status() > 0
                              ? absl::StrCat(" (expected ", spec.request().expect_status(), ")")
                              : "");
  }
  return out;
}

// The head: run, state, verdict, totals, rates, requests and the errors with their Windows words.
std::string SummaryText(const v1::RunReport& r) {
  std::string out = absl::StrFormat(
      "\nRun %s%s: %s, verdict %s\n", TerminalSafe(r.run_id()),
      r.spec().name().empty() ? "" : " (" + TerminalSafe(r.spec().name()) + ")", Word(r.state()),
      r.verdict() == v1::RunReport::VERDICT_UNSPECIFIED ? "-" : Word(r.verdict()));
  const v1::Totals& t = r.totals();
  absl::StrAppendFormat(&out, "  %.1fs  attempted %d  succeeded %d  failed %d  missed starts %d\n",
                        r.duration_s(), t.attempted(), t.succeeded(), t.failed(),
                        t.missed_starts());
  if (r.requested_rate() > 0) {
    absl::StrAppendFormat(&out, "  achieved %.0f conn/s of %.0f requested\n", r.achieved_rate(),
                          r.requested_rate());
  } else {
    absl::StrAppendFormat(&out, "  achieved %.0f conn/s at concurrency %d\n", r.achieved_rate(),
                          r.spec().concurrency());
  }
  absl::StrAppendFormat(&out, "  requests %d, %s per connection\n", t.requests(),
                        RequestsPerConnection(r));
  absl::StrAppend(&out, ExchangeText(r));
  absl::StrAppendFormat(&out, "  errors: %s\n%s\n", FormatErrors(r.errors(), 8), WindowsLines(r));
  return out;
}

// One line per agent and source, then each agent's problem and the store's.
std::string SourcesText(const v1::RunReport& r) {
  std::string out = absl::StrFormat("  %-12s %-16s %10s %10s %10s %15s %10s %10s  %s\n", "agent",
                                    "source", "attempted", "succeeded", "failed", "peak ports",
                                    "peak TW", "peak FW2", "errors");
  for (const v1::AgentReport& agent : r.agents()) {
    const std::string name = TerminalSafe(agent.name());
    for (const v1::SourceReport& s : agent.sources()) {
      absl::StrAppendFormat(&out, "  %-12s %-16s %10d %10d %10d %15s %10d %10d  %s\n", name,
                            TerminalSafe(s.ip()), s.attempted(), s.succeeded(), s.failed(),
                            absl::StrCat(s.peak_ports_in_use(), "/", s.port_range_size()),
                            s.peak_time_wait(), s.peak_fin_wait2(), FormatErrors(s.errors(), 4));
    }
    if (agent.sources_size() == 0) absl::StrAppendFormat(&out, "  %-16s (no telemetry)\n", name);
    if (!agent.problem().empty())
      absl::StrAppendFormat(&out, "  %-16s ! %s\n", name, TerminalSafe(agent.problem()));
  }
  if (!r.store_error().empty()) {
    absl::StrAppendFormat(&out,
                          "  ! run store: %s; the coordinator keeps this run and stores it once "
                          "the store can write again\n",
                          r.store_error());
  }
  return out;
}

// "NAME +DELTA, ..." of the counters that moved, by name; "" when none did.
std::string MovedCounters(const google::protobuf::Map<std::string, int64_t>& deltas) {
  std::vector<std::string> moved;
  for (const auto& [name, delta] : std::map<std::string, int64_t>(deltas.begin(), deltas.end())) {
    if (delta != 0) moved.push_back(absl::StrCat(TerminalSafe(name), " +", delta));
  }
  return absl::StrJoin(moved, ", ");
}

// The server side: each observed listener's peak states and its host's kernel counters.
std::string ObserversText(const v1::RunReport& r) {
  std::string out;
  for (const v1::ObserverReport& o : r.observers()) {
    for (const v1::ListenReport& l : o.listen()) {
      absl::StrAppendFormat(
          &out,
          "  server %s %s: peak TIME_WAIT %d, CLOSE_WAIT %d (clients' FIN_WAIT2 %d), "
          "ESTABLISHED %d\n",
          TerminalSafe(o.name()), TerminalSafe(l.address()), l.peak_time_wait(),
          l.peak_close_wait(), PeakFinWait2(r), l.peak_established());
    }
    const v1::ServerCounts& s = o.server();
    if (s.tls_full() + s.tls_resumed() + s.tls_failed() > 0) {
      absl::StrAppendFormat(&out,
                            "  server %s tls handshakes: full %d, resumed %d, failed %d (its "
                            "first process; the clients counted full %d, resumed %d)\n",
                            TerminalSafe(o.name()), s.tls_full(), s.tls_resumed(), s.tls_failed(),
                            r.totals().tls_full(), r.totals().tls_resumed());
    }
    std::string counters = MovedCounters(o.kernel_counters());
    if (!counters.empty()) {
      absl::StrAppend(&out, "  server ", TerminalSafe(o.name()), " kernel: ", counters, "\n");
    }
  }
  return out;
}

// The clients' kernel counters, conntrack tables, observations and thresholds.
std::string FindingsText(const v1::RunReport& r) {
  std::string out;
  std::string counters = MovedCounters(r.kernel_counters());
  if (!counters.empty()) absl::StrAppend(&out, "  kernel: ", counters, "\n");
  // Beside the counters: each conntrack table that tracked anything (most hosts' track nothing).
  for (const v1::AgentReport& a : r.agents()) {
    if (a.conntrack().peak_count() == 0) continue;
    absl::StrAppendFormat(&out, "  conntrack %s: at most %d of %d entries\n",
                          TerminalSafe(a.name()), a.conntrack().peak_count(), a.conntrack().max());
  }
  for (const std::string& o : r.observations()) {
    absl::StrAppend(&out, "  * ", TerminalSafe(o), "\n");
  }
  for (const v1::ThresholdResult& th : r.thresholds()) {
    absl::StatusOr<Threshold> parsed = ParseThreshold(th.expression());
    absl::StrAppendFormat(&out, "  threshold %-28s observed %-12s %s%s\n",
                          TerminalSafe(th.expression()),
                          parsed.ok() ? FormatMetricValue(parsed->metric, th.observed())
                                      : absl::StrFormat("%g", th.observed()),
                          th.passed() ? "pass" : "FAIL",
                          th.is_default() ? " (the default: the spec sets no thresholds)" : "");
  }
  // Why the verdict is what it is (a report stored before reasons existed has none).
  for (const std::string& reason : r.verdict_reasons()) {
    absl::StrAppend(&out, "  verdict ", Word(r.verdict()), ": ", TerminalSafe(reason), "\n");
  }
  return out;
}

}  // namespace

std::string FormatReportText(const v1::RunReport& r) {
  return absl::StrCat(
      SummaryText(r), SourcesText(r), "\n", Latency("connect", r.latency().connect()),
      r.latency().tls_handshake().count() > 0 ? Latency("tls", r.latency().tls_handshake()) : "",
      Latency("total", r.latency().total()), Latency("in connect", r.latency().connect_call()),
      Latency("loop lag", r.latency().loop_lag()), ObserversText(r), FormatTupleBudget(r),
      FormatConcurrency(r), FindingsText(r));
}

namespace {

// A row of the comparison: three columns of 30, 34 and 34, 100 in all; a longer cell wraps
// onto lines of its own.
void AppendCompareRow(const char* name, const std::string& x, const std::string& y,
                      std::string* out) {
  const std::vector<std::string> xs = WrapWords(x, 34);
  const std::vector<std::string> ys = WrapWords(y, 34);
  for (size_t i = 0; i < std::max(xs.size(), ys.size()); ++i) {
    std::string line = absl::StrFormat("%-30s %-34s %s", i == 0 ? name : "",
                                       i < xs.size() ? xs[i] : "", i < ys.size() ? ys[i] : "");
    absl::StrAppend(out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
}

}  // namespace

std::string FormatCompare(const v1::CompareReport& c) {
  const v1::RunReport& a = c.single();
  const v1::RunReport& b = c.distributed();
  auto sources = [](const v1::RunReport& r) {
    int n = 0;
    for (const v1::AgentReport& agent : r.agents()) n += agent.sources_size();
    return n;
  };
  auto peak = [](const v1::RunReport& r, bool time_wait) {
    uint64_t best = 0;
    uint64_t range = 0;
    for (const v1::AgentReport& agent : r.agents()) {
      for (const v1::SourceReport& s : agent.sources()) {
        uint64_t v = time_wait ? s.peak_time_wait() : s.peak_ports_in_use();
        if (v >= best) {
          best = v;
          range = s.port_range_size();
        }
      }
    }
    return time_wait ? absl::StrCat(best) : absl::StrCat(best, "/", range);
  };
  std::string out = absl::StrFormat("\n%-30s %-34s %s\n", "", "single source", "distributed");
  auto row = [&out](const char* name, const std::string& x, const std::string& y) {
    AppendCompareRow(name, x, y, &out);
  };
  row("run", TerminalSafe(a.run_id()), TerminalSafe(b.run_id()));
  row("agents / source IPs", absl::StrCat(a.agents_size(), " / ", sources(a)),
      absl::StrCat(b.agents_size(), " / ", sources(b)));
  row("requested rate", absl::StrFormat("%.0f/s", a.requested_rate()),
      absl::StrFormat("%.0f/s", b.requested_rate()));
  row("achieved rate", absl::StrFormat("%.0f/s", a.achieved_rate()),
      absl::StrFormat("%.0f/s", b.achieved_rate()));
  row("attempted", absl::StrCat(a.totals().attempted()), absl::StrCat(b.totals().attempted()));
  row("succeeded", absl::StrCat(a.totals().succeeded()), absl::StrCat(b.totals().succeeded()));
  row("failed", absl::StrCat(a.totals().failed()), absl::StrCat(b.totals().failed()));
  row("failures", FormatErrors(a.errors(), 2), FormatErrors(b.errors(), 2));
  row("the same on Windows", WindowsCodes(a), WindowsCodes(b));
  row("requests per connection", RequestsPerConnection(a), RequestsPerConnection(b));
  row("peak ports (busiest source)", peak(a, false), peak(b, false));
  row("peak TIME_WAIT (one source)", peak(a, true), peak(b, true));
  auto waits = [](const v1::RunReport& r) {
    return absl::StrCat(PeakFinWait2(r), " / ", PeakServerCloseWait(r));
  };
  row("FIN_WAIT2 / server CLOSE_WAIT", waits(a), waits(b));
  row("connect p99", P99(a.latency().connect()), P99(b.latency().connect()));
  row("tuple budget", absl::StrFormat("%.0f/s", a.tuple_budget().total_rate()),
      absl::StrFormat("%.0f/s", b.tuple_budget().total_rate()));
  row("verdict", Word(a.verdict()), Word(b.verdict()));
  absl::StrAppend(&out, "\n");
  for (const std::string& line : c.summary()) {
    for (const std::string& part : WrapWords(TerminalSafe(line), 100)) {
      absl::StrAppend(&out, part, "\n");
    }
  }
  return out;
}

std::string FormatAgents(const std::vector<v1::AgentInfo>& agents) {
  if (agents.empty()) return "no agents attached\n";
  std::string out = absl::StrFormat("%-16s %-20s %-24s %-13s %-8s %s\n", "name", "host",
                                    "busy with", "port range", "fd limit", "source IPs");
  for (const v1::AgentInfo& a : agents) {
    const v1::Hello& h = a.hello();
    std::string sources = absl::StrJoin(h.source_ips(), ",");
    if (a.source_ips_total() > static_cast<uint32_t>(h.source_ips_size())) {
      // A summary: the first 16 (`churnlab agents NAME` lists them all).
      absl::StrAppendFormat(&sources, " ... (%d of %u)", h.source_ips_size(), a.source_ips_total());
    }
    absl::StrAppendFormat(&out, "%-16s %-20s %-24s %-13s %-8d %s\n", TerminalSafe(h.name()),
                          TerminalSafe(h.host()), TerminalSafe(a.busy_with()),
                          absl::StrCat(h.port_range().low(), "-", h.port_range().high()),
                          h.fd_limit(), TerminalSafe(sources));
  }
  return out;
}

// "k=v k2=v2", sorted by key (protobuf's map has no order).
std::string TagsText(const google::protobuf::Map<std::string, std::string>& tags) {
  std::map<std::string, std::string> sorted(tags.begin(), tags.end());
  std::vector<std::string> parts;
  for (const auto& [key, value] : sorted) parts.push_back(absl::StrCat(key, "=", value));
  return absl::StrJoin(parts, " ");
}

std::string FormatReportsText(const std::vector<v1::RunReport>& reports) {
  std::string out =
      absl::StrFormat("%-26s %-9s %10s %9s %10s %11s  %s\n", "run", "verdict", "attempted",
                      "failed", "achieved/s", "connect p99", "top error");
  for (const v1::RunReport& r : reports) {
    const auto [error, count] = TopError(r);
    const std::string top = count > 0 ? absl::StrCat(error, " ", count) : "-";
    absl::StrAppendFormat(
        &out, "%-26s %-9s %10d %9d %10.0f %11s  %s\n", TerminalSafe(r.run_id()).substr(0, 26),
        r.verdict() == v1::RunReport::VERDICT_UNSPECIFIED ? "-" : Word(r.verdict()),
        r.totals().attempted(), r.totals().failed(), r.achieved_rate(), P99(r.latency().connect()),
        TerminalSafe(top).substr(0, 18));
  }
  for (const v1::RunReport& r : reports) {
    for (const std::string& reason : r.verdict_reasons()) {
      absl::StrAppend(&out, TerminalSafe(r.run_id()), ": ", TerminalSafe(reason), "\n");
    }
  }
  return out;
}

std::string FormatRuns(const std::vector<v1::RunSummary>& runs) {
  if (runs.empty()) return "no runs\n";
  std::string out = absl::StrFormat("%-26s %-25s %-12s %-8s %12s %12s  %s\n", "run", "started",
                                    "state", "verdict", "achieved/s", "requested/s", "name [tags]");
  for (const v1::RunSummary& r : runs) {
    // A running run's achieved rate is known at its end: "-", not a 0 that reads as a failure.
    const std::string achieved = r.state() == v1::RunReport::STATE_RUNNING
                                     ? "-"
                                     : absl::StrFormat("%.0f", r.achieved_rate());
    const std::string tags = TagsText(r.tags());
    absl::StrAppendFormat(
        &out, "%-26s %-25s %-12s %-8s %12s %12.0f  %s%s\n", TerminalSafe(r.run_id()),
        TerminalSafe(r.started_at()), Word(r.state()),
        r.verdict() == v1::RunReport::VERDICT_UNSPECIFIED ? "-" : Word(r.verdict()), achieved,
        r.requested_rate(), TerminalSafe(r.name()),
        tags.empty() ? "" : TerminalSafe(absl::StrCat(" [", tags, "]")));
    if (!r.problem().empty()) absl::StrAppend(&out, "    (", TerminalSafe(r.problem()), ")\n");
  }
  return out;
}

}  // namespace churnlab
