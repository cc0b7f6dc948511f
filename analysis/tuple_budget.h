// The tuple budget: how many new connections per second each source IP can sustain before its
// four-tuples run out, from what the agents reported (port range, tcp_tw_reuse,
// tcp_max_tw_buckets, source IPs), their shares and the spec. The one computation of it: the
// preflight warnings, the report, `churnlab compare` and the dashboard all read it from here.
#pragma once

#include <span>

#include "analysis/run_shape.h"
#include "churnlab/v1/report.pb.h"
#include "churnlab/v1/spec.pb.h"

namespace churnlab::analysis {

// Linux: TIME_WAIT lasts TCP_TIMEWAIT_LEN, fixed at compile time.
inline constexpr double kTimeWaitSeconds = 60;

// Per (agent, source IP): ports x destinations / TIME_WAIT seconds, the share asked of it, when
// its ports run out at that share, and whether TIME_WAIT binds at all (`limit`); with notes on
// what changes the picture and a one-sentence `summary`.
v1::TupleBudget ComputeTupleBudget(const v1::RunSpec& spec, std::span<const ShardFacts> shards);

}  // namespace churnlab::analysis
