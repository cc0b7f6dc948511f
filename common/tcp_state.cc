#include "common/tcp_state.h"

namespace churnlab {
namespace {

constexpr TcpState kAll[] = {TcpState::kEstablished, TcpState::kSynSent,   TcpState::kSynRecv,
                             TcpState::kFinWait1,    TcpState::kFinWait2,  TcpState::kTimeWait,
                             TcpState::kClose,       TcpState::kCloseWait, TcpState::kLastAck,
                             TcpState::kListen,      TcpState::kClosing};

constexpr const char* kNames[kTcpStateSlots] = {
    "UNKNOWN",   "ESTABLISHED", "SYN_SENT",   "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
    "TIME_WAIT", "CLOSE",       "CLOSE_WAIT", "LAST_ACK", "LISTEN",    "CLOSING"};

static_assert(static_cast<int>(TcpState::kClosing) == kTcpStateSlots - 1);
static_assert(sizeof(kAll) / sizeof(kAll[0]) == kTcpStateSlots - 1);

}  // namespace

std::span<const TcpState> AllTcpStates() { return kAll; }

const char* TcpStateName(TcpState state) {
  int i = static_cast<int>(state);
  return i > 0 && i < kTcpStateSlots ? kNames[i] : kNames[0];
}

}  // namespace churnlab
