// Open-model pacing: when the i-th connection of a run is due. Start times come from the schedule,
// never from when the previous connection finished, so a slow target cannot quietly lower the
// offered load (no coordinated omission): late starts are measured, skipped ones are counted.
#pragma once

#include <cstdint>
#include <vector>

#include "common/engine_params.h"

namespace churnlab {

class Pacer {
 public:
  // One leg of the rate profile: from the previous leg's rate (the start rate for the first),
  // linearly to `rate` connections/s over `nanos`.
  struct Leg {
    int64_t nanos;
    double rate;
  };
  // Starts at `start_rate` connections/s, follows `legs`, then keeps the last leg's rate (or
  // `start_rate` without legs). A rate of 0 after the last leg starts nothing more.
  Pacer(double start_rate, std::vector<Leg> legs);
  // The schedule `params` asks for: its stages (from 0), else its ramp_up then its rate, else
  // its rate.
  static Pacer For(const EngineParams& params);

  // Nanoseconds after the run's start at which connection `index` (0-based) is due; INT64_MAX
  // when the profile never reaches it.
  int64_t IntendedStartNanos(uint64_t index) const;
  // How many connections are due by `elapsed_nanos`, i.e. the smallest i with
  // IntendedStartNanos(i) > elapsed_nanos.
  uint64_t DueBy(int64_t elapsed_nanos) const;

  // From connection `from_index` on, starts follow `rate` per second (> 0), the first at
  // `from_nanos`. For a schedule that stays in order, `from_index` is DueBy(from_nanos) of the
  // schedule so far; later changes come at higher indexes.
  void ChangeRate(uint64_t from_index, int64_t from_nanos, double rate);

 private:
  // A leg in absolute terms: it starts at `t0` with `n0` connections started so far, at rate
  // `r0` per nanosecond, and changes by `slope` per nanosecond squared until `t1`.
  struct Span {
    double t0, t1;
    double n0, n1;
    double r0, slope;
  };
  struct Segment {
    uint64_t index;
    double nanos;
    double rate;  // per nanosecond
  };
  // Connections due by `t` nanoseconds under the profile (not the changes), fractional.
  double Count(double t) const;

  std::vector<Span> spans_;        // the legs, then an open-ended span at the final rate
  std::vector<Segment> segments_;  // rate changes, by increasing index
};

}  // namespace churnlab
