// Sockets by TCP state as telemetry and reports carry them (v1::TcpStateCounts: a field per
// state, numbered as the kernel numbers it), read and written by TcpState.
#pragma once

#include <array>
#include <cstdint>

#include "churnlab/v1/telemetry.pb.h"
#include "common/tcp_state.h"

namespace churnlab {

uint64_t CountOf(const v1::TcpStateCounts& counts, TcpState state);
void SetCount(v1::TcpStateCounts* counts, TcpState state, uint64_t n);
void AddCount(v1::TcpStateCounts* counts, TcpState state, uint64_t n);
// Every state of `from` added to `into`.
void AddCounts(const v1::TcpStateCounts& from, v1::TcpStateCounts* into);
// From an array indexed by TcpState (a socket census): slot 0, no state, is not counted.
void AddCounts(const std::array<uint64_t, kTcpStateSlots>& by_state, v1::TcpStateCounts* into);
// Counts above `max` become `max`; how many did.
uint64_t ClampCounts(v1::TcpStateCounts* counts, uint64_t max);

}  // namespace churnlab
