// Linux TCP states, numbered as the kernel numbers them (include/net/tcp_states.h), and their
// names as `ss` writes them. The one list of states: the socket table's reader, telemetry's
// TcpStateCounts (a field per state, numbered alike) and /metrics' labels all use it.
#pragma once

#include <cstdint>
#include <span>

namespace churnlab {

enum class TcpState : uint8_t {
  kEstablished = 1,
  kSynSent,
  kSynRecv,
  kFinWait1,
  kFinWait2,
  kTimeWait,
  kClose,
  kCloseWait,
  kLastAck,
  kListen,
  kClosing,
};

// Slots of an array indexed by TcpState: 0 (no state) and the 11 states.
inline constexpr int kTcpStateSlots = 12;

// The 11 states in the kernel's order.
std::span<const TcpState> AllTcpStates();

// "ESTABLISHED", "TIME_WAIT", ...; "UNKNOWN" for a number that is no state.
const char* TcpStateName(TcpState state);

}  // namespace churnlab
