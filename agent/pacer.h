// Open-model pacing: when the i-th connection of a run is due. Start times come from the schedule,
// never from when the previous connection finished, so a slow target cannot quietly lower the
// offered load (no coordinated omission): late starts are measured, skipped ones are counted.
#pragma once

#include <cstdint>

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

 private:
  double rate_;  // per nanosecond
  double ramp_nanos_;
  double ramp_connections_;  // connections started during the ramp: rate * ramp / 2
};

}  // namespace churnlab
