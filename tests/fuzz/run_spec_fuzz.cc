// libFuzzer target over the run spec's JSON parser and validator (scripts/fuzz.sh builds and
// runs it with clang, AddressSanitizer and UBSan).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/spec_invariants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  churnlab::testing::CheckSpecInvariants(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
