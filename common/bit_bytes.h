// Bit sets on the wire as bytes: bit i is bit i % 8 of byte i / 8 (the engine's port plans and
// its active destinations alike).
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace churnlab {

// Sets bit `i` of `bytes`, growing it with zero bytes as needed.
inline void SetBit(std::string* bytes, size_t i) {
  if (i / 8 >= bytes->size()) bytes->resize(i / 8 + 1, '\0');
  (*bytes)[i / 8] = static_cast<char>((*bytes)[i / 8] | (1 << (i % 8)));
}

// Whether bit `i` of `bytes` is set; bits past its end are not.
inline bool BitAt(absl::string_view bytes, size_t i) {
  return i / 8 < bytes.size() && ((static_cast<unsigned char>(bytes[i / 8]) >> (i % 8)) & 1) != 0;
}

}  // namespace churnlab
