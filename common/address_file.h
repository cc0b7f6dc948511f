// Address files: a server started on port 0 writes the address it got, so that tests and
// scripts running in parallel can find it.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace churnlab {

// Writes `text` and a newline to `path` through a temporary file and a rename, so a reader never
// sees half of it.
absl::Status WriteAddressFile(const std::string& path, const std::string& text);

}  // namespace churnlab
