#include "agent/pacer.h"

#include <cmath>

namespace churnlab {

Pacer::Pacer(double rate, int64_t ramp_up_nanos)
    : rate_(rate / 1e9),
      ramp_nanos_(static_cast<double>(ramp_up_nanos)),
      ramp_connections_(rate_ * ramp_nanos_ / 2) {}

// During the ramp the rate grows as rate*t/ramp, so N(t) = rate*t^2/(2*ramp); after it,
// N(t) = ramp_connections + rate*(t - ramp). Each start time is N's inverse at the index.
int64_t Pacer::IntendedStartNanos(uint64_t index) const {
  for (auto s = segments_.rbegin(); s != segments_.rend(); ++s) {
    if (index >= s->index) {
      return static_cast<int64_t>(std::ceil(s->nanos + (index - s->index) / s->rate));
    }
  }
  double i = static_cast<double>(index);
  if (i < ramp_connections_) {
    return static_cast<int64_t>(std::ceil(std::sqrt(2 * ramp_nanos_ * i / rate_)));
  }
  return static_cast<int64_t>(std::ceil(ramp_nanos_ + (i - ramp_connections_) / rate_));
}

uint64_t Pacer::DueBy(int64_t elapsed_nanos) const {
  if (elapsed_nanos < 0) return 0;
  double t = static_cast<double>(elapsed_nanos);
  double n = t < ramp_nanos_ ? rate_ * t * t / (2 * ramp_nanos_)
                             : ramp_connections_ + rate_ * (t - ramp_nanos_);
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
