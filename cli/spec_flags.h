// The run spec from the command line: a JSON file (--spec) and one flag per spec field that
// overrides it, shared by `churnlab run` and `churnlab compare`.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "churnlab/v1/spec.pb.h"
#include "common/engine_params.h"
#include "common/flags.h"

namespace churnlab {

// Flags that override the spec file, each applied only when given.
struct SpecOverrides {
  std::vector<std::function<absl::Status(v1::RunSpec*)>> edits;
  // Either flag replaces the file's model; both on one command line are refused.
  bool rate_given = false;
  bool concurrency_given = false;
  bool duration_given = false;
  // --stage flags, in order: together they replace the file's stages (and its ramp_up, and the
  // rate and duration they imply unless --rate or --duration is given too).
  std::vector<RateStage> stages;
};

// Registers --target, --rate, --concurrency, --duration, ... on `flags`; each given flag adds an
// edit to `overrides`.
void AddSpecFlags(FlagSet& flags, SpecOverrides& overrides);

// The spec from `spec_file` (if any) with `overrides` applied, defaults filled and validated;
// INVALID_ARGUMENT naming the file or field otherwise (both --rate and --concurrency given
// included).
absl::StatusOr<v1::RunSpec> BuildSpec(const std::string& spec_file, const SpecOverrides& overrides);

}  // namespace churnlab
