// An engine snapshot as bytes, for an agent's engine processes to send their counters to the
// agent over a pipe (agent/engine_processes.h). Both ends are the same build: the layout is not
// a stable format.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "agent/engine_snapshot.h"

namespace churnlab {

std::string EncodeSnapshot(const EngineSnapshot& snapshot);
// False when `bytes` is truncated or malformed.
bool DecodeSnapshot(absl::string_view bytes, EngineSnapshot* out);

}  // namespace churnlab
