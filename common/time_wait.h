// The kernel's TIME_WAIT rules, one place for the analysis (budgets, the planner) and the engine
// (bind mode engine's port reuse) alike.
#pragma once

namespace churnlab {

// Linux: TIME_WAIT lasts TCP_TIMEWAIT_LEN, fixed at compile time.
inline constexpr double kTimeWaitSeconds = 60;
// A whole TIME_WAIT and a second: bind mode engine's wait for one it cannot take over (the kernel
// counts it from the peer's FIN rather than our close).
inline constexpr double kTimeWaitWithMarginSeconds = kTimeWaitSeconds + 1;
// Linux: tcp_tw_reuse takes over a TIME_WAIT tuple this long after its last timestamp
// (net.ipv4.tcp_tw_reuse_delay, in ms since 6.13; one second before it).
inline constexpr double kTwReuseDelaySeconds = 1;

// tcp_tw_reuse as the kernel applies it (tcp_twsk_unique): 1, or 2 on a loopback connection,
// and only by the TIME_WAIT tuple's TCP timestamp (tcp_timestamps above 0). The delay after
// which a new connection takes a TIME_WAIT tuple over, or 0 when reuse does not apply.
inline double ReuseDelay(int tw_reuse, int timestamps, bool loopback, double delay_s) {
  bool set = tw_reuse == 1 || (tw_reuse == 2 && loopback);
  return set && timestamps > 0 ? delay_s : 0;
}

// tcp_tw_reuse acts only in connect()'s own port search. A connect() from a socket its caller
// bound to the port (bind mode engine) takes that four-tuple's TIME_WAIT over as soon as it
// exists when the connection had TCP timestamps (tcp_twsk_unique: PAWS keeps the old segments
// out; TcpExtTWRecycled counts it), whatever tcp_tw_reuse says; without timestamps it waits the
// TIME_WAIT out. Known before a run only where both ends are this kernel (a loopback connection)
// with tcp_timestamps on; a remote server decides for itself. Our FIN must have been acknowledged
// (a socket still in FIN_WAIT1 refuses the four-tuple); a server that has not closed yet (its
// socket in CLOSE_WAIT) answers the new SYN with an ACK, the client resets that old connection
// and retransmits its SYN: a few ms more, and the server's half-closed socket is gone.
// Bind mode engine takes a TIME_WAIT over once our FIN is acknowledged, and waits for that at
// least a retransmission timeout, TCP_RTO_MIN (EngineWorker::TakeoverWait): each port serves a
// destination again every 0.2 s or more.
inline constexpr double kTakeoverWaitSeconds = 0.2;
inline bool BoundConnectTakesOver(int timestamps, bool loopback) {
  return timestamps > 0 && loopback;
}

}  // namespace churnlab
