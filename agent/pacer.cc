#include "agent/pacer.h"

#include <cmath>
#include <limits>

namespace churnlab {

Pacer::Pacer(double start_rate, std::vector<Leg> legs) {
  double t = 0;
  double n = 0;
  double r = start_rate / 1e9;
  for (const Leg& leg : legs) {
    if (leg.nanos <= 0) continue;
    double d = static_cast<double>(leg.nanos);
    double r1 = leg.rate / 1e9;
    double count = (r + r1) / 2 * d;  // the area under a straight line
    spans_.push_back(Span{t, t + d, n, n + count, r, (r1 - r) / d});
    t += d;
    n += count;
    r = r1;
  }
  spans_.push_back(Span{t, std::numeric_limits<double>::infinity(), n,
                        r > 0 ? std::numeric_limits<double>::infinity() : n, r, 0});
}

Pacer Pacer::For(const EngineParams& params) {
  if (!params.stages.empty()) {
    std::vector<Leg> legs;
    for (const RateStage& stage : params.stages) {
      legs.push_back(Leg{absl::ToInt64Nanoseconds(stage.duration), stage.rate});
    }
    return Pacer(0, std::move(legs));
  }
  double rate = params.rate > 0 ? params.rate : 1;  // the closed model paces nothing
  if (params.ramp_up > absl::ZeroDuration()) {
    return Pacer(0, {Leg{absl::ToInt64Nanoseconds(params.ramp_up), rate}});
  }
  return Pacer(rate, {});
}

// Within a span, N(t) = n0 + r0*x + slope*x^2/2 with x = t - t0; a start time is N's inverse at
// the index: x = 2k / (r0 + sqrt(r0^2 + 2*slope*k)) for k = index - n0, which holds for rising,
// falling and flat legs alike.
int64_t Pacer::IntendedStartNanos(uint64_t index) const {
  for (auto s = segments_.rbegin(); s != segments_.rend(); ++s) {
    if (index >= s->index) {
      return static_cast<int64_t>(std::ceil(s->nanos + (index - s->index) / s->rate));
    }
  }
  double i = static_cast<double>(index);
  for (const Span& s : spans_) {
    if (i >= s.n1) continue;
    double k = i - s.n0;
    if (k <= 0) return static_cast<int64_t>(std::ceil(s.t0));
    double root = std::sqrt(std::max(0.0, s.r0 * s.r0 + 2 * s.slope * k));
    double x = 2 * k / (s.r0 + root);
    return static_cast<int64_t>(std::ceil(std::min(s.t0 + x, s.t1)));
  }
  return std::numeric_limits<int64_t>::max();
}

double Pacer::Count(double t) const {
  for (const Span& s : spans_) {
    if (t >= s.t1) continue;
    double x = t - s.t0;
    return s.n0 + s.r0 * x + s.slope * x * x / 2;
  }
  return spans_.back().n1;
}

uint64_t Pacer::DueBy(int64_t elapsed_nanos) const {
  if (elapsed_nanos < 0) return 0;
  double t = static_cast<double>(elapsed_nanos);
  double n = Count(t);
  if (!segments_.empty() && t >= segments_.back().nanos) {
    n = segments_.back().index + segments_.back().rate * (t - segments_.back().nanos);
  }
  // Floating point may land one off either side; settle it against IntendedStartNanos.
  uint64_t due = static_cast<uint64_t>(std::floor(n)) + 1;
  while (due > 0 && IntendedStartNanos(due - 1) > elapsed_nanos) --due;
  while (IntendedStartNanos(due) <= elapsed_nanos) ++due;
  return due;
}

void Pacer::ChangeRate(uint64_t from_index, int64_t from_nanos, double rate) {
  segments_.push_back(Segment{from_index, static_cast<double>(from_nanos), rate / 1e9});
}

}  // namespace churnlab
