// The monotonic clock seam: real time in production, simulated time in tests.
#pragma once

#include <cstdint>
#include <memory>

namespace churnlab {

class Clock {
 public:
  virtual ~Clock() = default;
  // Nanoseconds on a monotonic clock with an arbitrary epoch; never goes backwards.
  virtual int64_t NowNanos() = 0;
};

// CLOCK_BOOTTIME (monotonic, suspend included, the same in every process of a host) through the
// vDSO: about 20 ns a call, cheap enough for the hot path.
class RealClock final : public Clock {
 public:
  int64_t NowNanos() override;
};

Clock& SystemClock();

}  // namespace churnlab
