#include "agent/run_summary.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/windows_errors.h"

namespace churnlab {
namespace {

double PerSecond(uint64_t count, int64_t nanos) {
  return nanos > 0 ? static_cast<double>(count) * 1e9 / static_cast<double>(nanos) : 0;
}

std::string LatencyLine(const char* name, const Histogram& h) {
  if (h.count() == 0) return absl::StrFormat("  %-18s (none)\n", name);
  return absl::StrFormat("  %-18s p50 %-8s p90 %-8s p99 %-8s p99.9 %-8s max %s\n", name,
                         FormatNanos(h.Percentile(50)), FormatNanos(h.Percentile(90)),
                         FormatNanos(h.Percentile(99)), FormatNanos(h.Percentile(99.9)),
                         FormatNanos(h.max()));
}

// What a Windows client reports in place of each kind of failure the run counted.
std::string WindowsLines(const OutcomeCounts& counts) {
  std::map<std::string, const WindowsError*> seen;
  counts.ForEachFailure([&](Phase phase, int code, uint64_t) {
    std::string name = OutcomeCodeName(phase, code);
    const WindowsError* w = WindowsErrorFor(name, PhaseName(phase));
    if (w == nullptr) w = WindowsErrorFor(PhaseName(phase));  // "connect-timeout"
    if (w != nullptr) seen[absl::StrCat(PhaseName(phase), " ", name)] = w;
  });
  std::string out;
  for (const auto& [failure, w] : seen) {
    absl::StrAppend(&out, "  on Windows ", failure, " is ", DescribeWindowsError(*w), "\n");
  }
  return out;
}

// TLS handshakes (full and resumed) and HTTP status codes, for the protocols that have them.
std::string ExchangeLines(const EngineParams& params, const EngineSnapshot& s,
                          const OutcomeCounts& t) {
  std::string out;
  if (UsesTls(params.protocol)) {
    uint64_t done = t.tls_full + t.tls_resumed;
    absl::StrAppendFormat(&out, "  tls handshakes %d: full %d, resumed %d (%.1f%%)%s\n", done,
                          t.tls_full, t.tls_resumed, done > 0 ? 100.0 * t.tls_resumed / done : 0,
                          params.tls.insecure ? "; certificates NOT verified (--insecure)" : "");
  }
  if (!s.status_codes.empty()) {
    std::vector<std::string> codes;
    for (const auto& [code, n] : s.status_codes) codes.push_back(absl::StrCat(code, " ", n));
    absl::StrAppend(&out, "  responses by status: ", absl::StrJoin(codes, ", "), "\n");
  }
  return out;
}

}  // namespace

std::string FormatNanos(int64_t nanos) {
  if (nanos < 1'000) return absl::StrCat(nanos, "ns");
  if (nanos < 1'000'000) return absl::StrFormat("%.0fus", nanos / 1e3);
  if (nanos < 1'000'000'000) return absl::StrFormat("%.1fms", nanos / 1e6);
  return absl::StrFormat("%.2fs", nanos / 1e9);
}

std::string FormatFailures(const OutcomeCounts& counts, size_t max_items) {
  std::vector<std::tuple<uint64_t, Phase, int>> cells;
  counts.ForEachFailure(
      [&](Phase phase, int code, uint64_t n) { cells.emplace_back(n, phase, code); });
  if (cells.empty()) return "none";
  std::sort(cells.begin(), cells.end(),
            [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
  std::vector<std::string> parts;
  for (size_t i = 0; i < cells.size() && i < max_items; ++i) {
    auto [n, phase, code] = cells[i];
    parts.push_back(absl::StrCat(PhaseName(phase), " ", OutcomeCodeName(phase, code), " ", n));
  }
  if (cells.size() > max_items)
    parts.push_back(absl::StrCat("+", cells.size() - max_items, " more"));
  return absl::StrJoin(parts, ", ");
}

std::string FormatProgress(const EngineParams& params, const EngineSnapshot& total,
                           const EngineSnapshot& delta) {
  OutcomeCounts d = delta.Total();
  std::string requested = params.rate > 0 ? absl::StrFormat(" (of %.0f/s)", params.rate)
                                          : absl::StrCat(" (concurrency ", params.concurrency, ")");
  std::string line =
      absl::StrFormat("%6.1fs  started %.0f/s%s  ok %.0f/s  failed %.0f/s  in-flight %d",
                      total.elapsed_nanos / 1e9, PerSecond(d.attempted, delta.elapsed_nanos),
                      requested, PerSecond(d.succeeded, delta.elapsed_nanos),
                      PerSecond(d.failed(), delta.elapsed_nanos), total.in_flight);
  if (delta.missed_starts > 0) absl::StrAppend(&line, "  missed ", delta.missed_starts);
  if (delta.late_starts > 0) absl::StrAppend(&line, "  late-skipped ", delta.late_starts);
  if (delta.connect_latency.count() > 0) {
    absl::StrAppend(&line, "  connect p99 ", FormatNanos(delta.connect_latency.Percentile(99)));
  }
  if (delta.tls_handshake.count() > 0) {
    absl::StrAppend(&line, "  tls p99 ", FormatNanos(delta.tls_handshake.Percentile(99)));
  }
  if (delta.connect_call.count() > 0) {
    absl::StrAppend(&line, "  in connect() p99 ", FormatNanos(delta.connect_call.Percentile(99)));
  }
  if (d.failed() > 0) absl::StrAppend(&line, "  [", FormatFailures(d, 3), "]");
  return line;
}

std::string FormatSummary(const EngineParams& params, const EngineSnapshot& s) {
  OutcomeCounts t = s.Total();
  std::string out = absl::StrFormat(
      "\nRun: %s, %s, close %s, bind %s, %d request(s)/connection, %.1fs\n",
      params.rate > 0 ? absl::StrFormat("open model %.0f conn/s", params.rate)
                      : absl::StrCat("closed model, concurrency ", params.concurrency),
      ProtocolName(params.protocol), ClosePolicyName(params.close_policy),
      BindModeName(params.bind_mode), params.requests_per_connection, s.elapsed_nanos / 1e9);
  absl::StrAppendFormat(&out,
                        "  attempted %d  succeeded %d  failed %d  requests %d  missed starts %d"
                        "  late-skipped starts %d\n",
                        t.attempted, t.succeeded, t.failed(), t.requests, s.missed_starts,
                        s.late_starts);
  absl::StrAppendFormat(&out, "  achieved %.0f conn/s ok\n",
                        PerSecond(t.succeeded, s.elapsed_nanos));
  absl::StrAppendFormat(&out, "\n  %-40s %10s %10s %10s  %s\n", "source", "attempted", "succeeded",
                        "failed", "failures");
  for (const SourceSnapshot& source : s.sources) {
    absl::StrAppendFormat(&out, "  %-40s %10d %10d %10d  %s\n", SourceName(source.source),
                          source.counts.attempted, source.counts.succeeded, source.counts.failed(),
                          FormatFailures(source.counts, 4));
  }
  absl::StrAppend(&out, WindowsLines(t), ExchangeLines(params, s, t));
  absl::StrAppend(&out, "\n", LatencyLine("connect", s.connect_latency));
  if (UsesTls(params.protocol))
    absl::StrAppend(&out, LatencyLine("tls handshake", s.tls_handshake));
  absl::StrAppend(&out, LatencyLine("connection", s.connection_latency));
  if (params.rate > 0) absl::StrAppend(&out, LatencyLine("start lateness", s.start_lateness));
  absl::StrAppend(&out, LatencyLine("in connect() call", s.connect_call),
                  LatencyLine("engine loop lag", s.loop_lag));
  return out;
}

}  // namespace churnlab
