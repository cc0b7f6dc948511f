// The scheduling priority of processes that only carry load (an agent's engine processes, a
// target's extra server processes): they yield to the control plane, so the agent's telemetry,
// the target's observer and the coordinator keep their one-second beat on a host whose cores the
// load fills. Nice 19 weighs 15 against nice 0's 1024 (CFS), so even the 51 engine processes of
// a million-connection shard weigh less together than one control-plane process; with nothing
// else to run they still get every idle cycle.
#pragma once

#include <sys/resource.h>

namespace churnlab {

inline constexpr int kLoadNice = 19;

inline void YieldToControlPlane() { setpriority(PRIO_PROCESS, 0, kLoadNice); }

}  // namespace churnlab
