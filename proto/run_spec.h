// The run spec as users write it: JSON (protobuf's mapping) in, a validated RunSpec out.
#pragma once

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "churnlab/v1/agent.pb.h"
#include "churnlab/v1/spec.pb.h"
#include "common/engine_params.h"

namespace churnlab {

// A spec is a page of JSON, not a data set: the most a spec file, an HTTP body or a StartRun's
// spec (encoded) may hold. Far under gRPC's 4 MiB message limit, so the limit a user meets is
// this one, named.
inline constexpr size_t kMaxSpecJsonBytes = 1 << 20;
inline constexpr size_t kMaxSpecBytes = 1 << 20;

// Parses a JSON spec. INVALID_ARGUMENT naming the field or the limit: text over
// kMaxSpecJsonBytes; a key given twice (also as both `max_in_flight` and `maxInFlight`), a list
// inside a list, a list or object where one value belongs (CheckJsonShape); unknown fields and
// wrong types (protobuf's description of the problem, which names the field).
absl::StatusOr<v1::RunSpec> ParseRunSpecJson(absl::string_view json);
// snake_case field names, defaults included, choices as words (MessageToJson).
std::string RunSpecToJson(const v1::RunSpec& spec);

// The engine's form of a spec's choice. INVALID_ARGUMENT for the unset zero (ApplyRunSpecDefaults
// fills it) and for a number this build does not know (a newer peer's), naming the known words.
absl::StatusOr<Protocol> ToEngine(v1::Protocol protocol);
absl::StatusOr<ClosePolicy> ToEngine(v1::ClosePolicy policy);
absl::StatusOr<BindMode> ToEngine(v1::BindMode mode);
// A spec's duration as the engine's, and back.
absl::Duration ToAbsl(const google::protobuf::Duration& d);
google::protobuf::Duration ToProto(absl::Duration d);
// And back: the spec's form of the engine's choice.
v1::Protocol ToProto(Protocol protocol);
v1::ClosePolicy ToProto(ClosePolicy policy);
v1::BindMode ToProto(BindMode mode);
// Whether agents bind the source IPs they are given (no-port, bind); false for none, bind-any
// and an unknown mode.
bool BindsSourceIps(v1::BindMode mode);

// The open model's rate the spec asks for `t_s` seconds into the run, over all agents: linear
// within its ramp or each stage, its rate after; 0 for the closed model or after the duration.
double RequestedRateAt(const v1::RunSpec& spec, double t_s);

// Fills every unset field that has a default (protocol, close_policy, bind_mode,
// requests_per_connection, connect_timeout, io_timeout, max_in_flight).
void ApplyRunSpecDefaults(v1::RunSpec* spec);

// OK, or INVALID_ARGUMENT naming the first offending field and its value, or the limit it
// exceeds (the encoded spec over kMaxSpecBytes; name, list lengths and item sizes). Call after
// ApplyRunSpecDefaults.
absl::Status ValidateRunSpec(const v1::RunSpec& spec);

// A run's tag (RunSpec.tags): OK, or INVALID_ARGUMENT saying what is wrong with the key (1-64
// of [A-Za-z0-9_.-/]) or the value (at most 256 bytes, no control characters).
absl::Status ValidateTag(absl::string_view key, absl::string_view value);
// A page of ListRuns: this many runs when the request gives no limit, and at most this many.
inline constexpr uint32_t kDefaultRunsPage = 100;
inline constexpr uint32_t kMaxRunsPage = 1000;

// "key=value" (the first '=' splits) as --tag and ?tag= take it, validated.
absl::StatusOr<std::pair<std::string, std::string>> ParseTag(absl::string_view key_eq_value);

// The engine parameters for the whole spec (the load not yet split, no source IPs); a bad value
// is INVALID_ARGUMENT naming the spec field. Agents apply their shard's share on top.
absl::StatusOr<EngineParams> EngineParamsFromSpec(const v1::RunSpec& spec);

// The engine parameters of one agent's shard: the spec with the shard's share of the load and
// its source IPs. INVALID_ARGUMENT naming the field when something does not hold.
absl::StatusOr<EngineParams> EngineParamsFromShard(const v1::Shard& shard);

}  // namespace churnlab
