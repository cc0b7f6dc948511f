#include "proto/tcp_state_counts.h"

#include <google/protobuf/descriptor.h>

namespace churnlab {
namespace {

using google::protobuf::FieldDescriptor;

// TcpStateCounts' field for each state: its number is the state's (checked by its test, and
// here: a state without its field would be a build of mismatched files).
const FieldDescriptor& FieldOf(TcpState state) {
  static const std::array<const FieldDescriptor*, kTcpStateSlots> fields = [] {
    std::array<const FieldDescriptor*, kTcpStateSlots> out{};
    for (TcpState s : AllTcpStates()) {
      out[static_cast<int>(s)] =
          v1::TcpStateCounts::descriptor()->FindFieldByNumber(static_cast<int>(s));
    }
    return out;
  }();
  return *fields[static_cast<int>(state)];
}

}  // namespace

uint64_t CountOf(const v1::TcpStateCounts& counts, TcpState state) {
  return counts.GetReflection()->GetUInt64(counts, &FieldOf(state));
}

void SetCount(v1::TcpStateCounts* counts, TcpState state, uint64_t n) {
  counts->GetReflection()->SetUInt64(counts, &FieldOf(state), n);
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
