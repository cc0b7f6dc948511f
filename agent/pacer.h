// Open-model pacing: when the i-th connection of a run is due. Start times come from the schedule,
// never from when the previous connection finished, so a slow target cannot quietly lower the
// offered load (no coordinated omission): late starts are measured, skipped ones are counted.
#pragma once

#include <cstdint>
#include <vector>

namespace churnlab {

class Pacer {
 public:
  // `rate` new connections per second (> 0) after a linear ramp from 0 over `ramp_up_nanos`.
  Pacer(double rate, int64_t ramp_up_nanos);

  // Nanoseconds after the run's start at which connection `index` (0-based) is due.
  int64_t IntendedStartNanos(uint64_t index) const;
  // How many connections are due by `elapsed_nanos`, i.e. the smallest i with
  // IntendedStartNanos(i) > elapsed_nanos.
  uint64_t DueBy(int64_t elapsed_nanos) const;

  // From connection `from_index` on, starts follow `rate` per second (> 0), the first at
  // `from_nanos`. For a schedule that stays in order, `from_index` is DueBy(from_nanos) of the
  // schedule so far; later changes come at higher indexes.
  void ChangeRate(uint64_t from_index, int64_t from_nanos, double rate);

 private:
  struct Segment {
    uint64_t index;
    double nanos;
    double rate;  // per nanosecond
  };
  std::vector<Segment> segments_;  // rate changes, by increasing index
  double rate_;                    // per nanosecond
  double ramp_nanos_;
  double ramp_connections_;  // connections started during the ramp: rate * ramp / 2
};

}  // namespace churnlab
