// What must hold for any bytes a user can send as a run spec (the fuzz target's oracle, and the
// replay of its findings in proto_test): parsing never crashes; a parsed spec passed the strict
// first pass (no key twice, no list in a list, no nesting past its limit); a spec that validates
// is within the size limit, gives engine parameters whose targets are never IPv4-mapped IPv6,
// and survives a round trip through its JSON.
#pragma once

#include <google/protobuf/util/message_differencer.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "common/net_address.h"
#include "proto/run_spec.h"
#include "proto/strict_json.h"

namespace churnlab::testing {

// Aborts (so libFuzzer and the test report it) when an invariant breaks.
inline void CheckSpecInvariants(absl::string_view input) {
  absl::StatusOr<v1::RunSpec> spec = ParseRunSpecJson(input);
  if (!spec.ok()) return;
  if (!CheckJsonShape(input, *v1::RunSpec::descriptor()).ok()) {
    std::fprintf(stderr, "a spec was parsed past the strict first pass\n");
    std::abort();
  }
  ApplyRunSpecDefaults(&*spec);
  if (!ValidateRunSpec(*spec).ok()) return;
  absl::StatusOr<EngineParams> params = EngineParamsFromSpec(*spec);
  if (!params.ok()) {
    std::fprintf(stderr, "valid spec, but no engine parameters: %s\n",
                 std::string(params.status().message()).c_str());
    std::abort();
  }
  for (const SocketAddress& target : params->targets) {
    if (target.is_v4_mapped() || spec->ByteSizeLong() > kMaxSpecBytes) {
      std::fprintf(stderr, "valid spec with a mapped target or over the size limit\n");
      std::abort();
    }
  }
  absl::StatusOr<v1::RunSpec> again = ParseRunSpecJson(RunSpecToJson(*spec));
  if (!again.ok() || !google::protobuf::util::MessageDifferencer::Equals(*spec, *again)) {
    std::fprintf(stderr, "valid spec does not survive its JSON round trip\n");
    std::abort();
  }
}

}  // namespace churnlab::testing
