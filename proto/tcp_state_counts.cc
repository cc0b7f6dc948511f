#include "proto/tcp_state_counts.h"

namespace churnlab {
namespace {

using C = v1::TcpStateCounts;

// Each state's field, by the kernel's number: the generated accessors, so that the report
// builder's per-source sums (122,880 sources a second in the fleet benchmark) use no
// reflection. TelemetryCodecTest.EveryStateHasItsFieldByNumberAndName holds this table to the
// message's field numbers and names.
struct Field {
  uint64_t (C::*get)() const;
  void (C::*set)(uint64_t);
};
const Field kFields[kTcpStateSlots] = {
    {nullptr, nullptr},  // 0: no state
    {&C::established, &C::set_established},
    {&C::syn_sent, &C::set_syn_sent},
    {&C::syn_recv, &C::set_syn_recv},
    {&C::fin_wait1, &C::set_fin_wait1},
    {&C::fin_wait2, &C::set_fin_wait2},
    {&C::time_wait, &C::set_time_wait},
    {&C::close, &C::set_close},
    {&C::close_wait, &C::set_close_wait},
    {&C::last_ack, &C::set_last_ack},
    {&C::listen, &C::set_listen},
    {&C::closing, &C::set_closing},
};

const Field& FieldOf(TcpState state) { return kFields[static_cast<int>(state)]; }

}  // namespace

uint64_t CountOf(const v1::TcpStateCounts& counts, TcpState state) {
  return (counts.*FieldOf(state).get)();
}

void SetCount(v1::TcpStateCounts* counts, TcpState state, uint64_t n) {
  (counts->*FieldOf(state).set)(n);
}

void AddCount(v1::TcpStateCounts* counts, TcpState state, uint64_t n) {
  if (n != 0) SetCount(counts, state, CountOf(*counts, state) + n);
}

void AddCounts(const v1::TcpStateCounts& from, v1::TcpStateCounts* into) {
  for (TcpState s : AllTcpStates()) AddCount(into, s, CountOf(from, s));
}

void AddCounts(const std::array<uint64_t, kTcpStateSlots>& by_state, v1::TcpStateCounts* into) {
  for (TcpState s : AllTcpStates()) AddCount(into, s, by_state[static_cast<int>(s)]);
}

uint64_t ClampCounts(v1::TcpStateCounts* counts, uint64_t max) {
  uint64_t changed = 0;
  for (TcpState s : AllTcpStates()) {
    if (CountOf(*counts, s) <= max) continue;
    SetCount(counts, s, max);
    ++changed;
  }
  return changed;
}

}  // namespace churnlab
