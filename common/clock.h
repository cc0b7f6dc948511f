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

// CPU time the calling thread has used, nanoseconds (CLOCK_THREAD_CPUTIME_ID): what a piece of
// work cost, which a busy host does not stretch as it stretches wall time.
int64_t ThreadCpuNanos();

// When a socket census is next due, `cost_nanos` of the calling thread's CPU after it started:
// `factor` times that cost, within [min_nanos, kMaxCensusGapNanos]. The one pacing rule of the
// idle agent's census and a shard's: by CPU, so a busy CPU cannot leave a census stale for
// minutes, and at least every 30 s however large the socket table.
inline constexpr int64_t kMaxCensusGapNanos = 30'000'000'000;
int64_t CensusGapNanos(int64_t cost_nanos, int64_t factor, int64_t min_nanos);

}  // namespace churnlab
