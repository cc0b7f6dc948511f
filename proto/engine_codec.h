// An agent's engine processes receive their part of the shard as a v1::EngineParams message on
// their stdin (agent/engine_processes.h): the engine's parameters to and from it.
#pragma once

#include "absl/status/statusor.h"
#include "churnlab/v1/engine.pb.h"
#include "common/engine_params.h"

namespace churnlab {

// Field for field. The targets must be resolved (no named_targets), and the CA certificates
// given as PEM (tls.ca_file is not carried).
v1::EngineParams EngineParamsToProto(const EngineParams& params);
// Field for field, then ValidateEngineParams: INVALID_ARGUMENT naming the field for an address
// that does not parse, a choice this build does not know, or a value the engine refuses.
absl::StatusOr<EngineParams> EngineParamsFromProto(const v1::EngineParams& message);

}  // namespace churnlab
