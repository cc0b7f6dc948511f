#include "analysis/connect_observations.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_format.h"

namespace churnlab::analysis {
namespace {

// Port fill below which connect() is still fast, and from which it slows (measured: 0.024 ms
// at 42% full, 3.96 ms p50 at 54%).
constexpr double kFastFill = 0.4;
constexpr double kSlowFill = 0.5;

}  // namespace

// Bind mode engine at a high fill: what connect() cost with the engine picking the ports, beside
// what it cost while the range was under kFastFill, and what the kernel's search would have done.
std::string ObserveEnginePorts(const v1::RunReport& report) {
  if (report.spec().bind_mode() != v1::BIND_MODE_ENGINE) return "";
  double fill = 0;
  double p99 = 0;
  std::vector<double> low;  // the intervals' p99 under kFastFill
  for (const v1::SeriesPoint& p : report.series()) {
    if (p.max_port_fill() < kFastFill && p.connect_call_p99_ms() > 0) {
      low.push_back(p.connect_call_p99_ms());
    }
    if (p.max_port_fill() >= fill) {
      fill = p.max_port_fill();
      p99 = std::max(p99, p.connect_call_p99_ms());
    }
  }
  if (fill < kSlowFill) return "";
  // Their median: the first second's cold start is no baseline.
  std::sort(low.begin(), low.end());
  const double median = low.empty() ? 0 : low[low.size() / 2];
  return absl::StrFormat(
      "bind mode engine picked every source port itself: with the fullest source's range %.0f%% "
      "full, connect() took a p99 of %.3f ms%s, with no port to search for. Under bind mode "
      "no-port the kernel searches the range for a free port inside connect(), and that search "
      "slows from about half full.",
      100 * fill, p99,
      median > 0 ? absl::StrFormat(" (a median p99 of %.3f ms while it was under %.0f%% full)",
                                   median, 100 * kFastFill)
                 : "");
}

std::string ObserveConnectSlowdown(const v1::RunReport& report) {
  // The port search happens inside connect(), so the time in that call is its witness; the
  // handshake's latency also carries scheduling noise (a loaded host's first second can read
  // slower than a filling range). Reports from agents that did not time the call use it anyway.
  bool by_call = std::any_of(report.series().begin(), report.series().end(),
                             [](const v1::SeriesPoint& p) { return p.connect_call_p99_ms() > 0; });
  double low = 0;  // the fastest interval under kFastFill: 0 while there is none
  double high_max = 0;
  double fill_at_max = 0;
  for (const v1::SeriesPoint& p : report.series()) {
    double p99 = by_call ? p.connect_call_p99_ms() : p.connect_p99_ms();
    if (p99 <= 0) continue;
    if (p.max_port_fill() < kFastFill) {
      low = low == 0 ? p99 : std::min(low, p99);
    } else if (p.max_port_fill() >= kSlowFill && p99 > high_max) {
      high_max = p99;
      fill_at_max = p.max_port_fill();
    }
  }
  // The baseline is the fastest low-fill interval: a point's fill is the census taken when the
  // interval began (it runs in the background and is picked up a beat later), so at a fast rate
  // an interval that starts under 40% full can end well past it; and one slow second (a
  // preempted engine) must not hide the rise.
  if (low == 0 || high_max == 0) return "";
  if (high_max < 5 * low) return "";
  const bool engine = report.spec().bind_mode() == v1::BIND_MODE_ENGINE;
  return absl::StrFormat(
      "connect() slowed from a p99 of %.2f ms while the fullest source's port range was under "
      "%.0f%% full to %.2f ms at %.0f%% full%s: %s",
      low, 100 * kFastFill, high_max, 100 * fill_at_max,
      by_call ? " (time inside the connect() call)" : "",
      engine ? "bind mode engine picked the ports, so this is not the kernel's port search (a "
               "busy host, or the handshake itself)."
             : "the kernel searches longer for a free port from about half full. Exhaustion "
               "shows first as slow connects and a falling rate, then as EADDRNOTAVAIL; "
               "--bind=engine picks each port in the engine, so connect() has none to search "
               "for.");
}

}  // namespace churnlab::analysis
