// The files the CLI writes on request (--report, --html, --junit, report --output): checked
// before a run starts, so that a path that cannot be written fails at once rather than after
// the traffic, and written whole or not at all, with the kernel's reason when it fails.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace churnlab {

// OK when `path` is empty (not asked for) or a file there can be written: an existing file
// (not a directory) writable, or a new one's directory. INVALID_ARGUMENT naming `flag`, the path
// and why not.
absl::Status CheckOutputFile(const std::string& flag, const std::string& path);

// Writes `text` to `path` whole (WriteWholeFile). UNAVAILABLE naming `what`, the path and the
// kernel's reason when it cannot.
absl::Status WriteOutputFile(const std::string& path, const std::string& text,
                             const std::string& what);

}  // namespace churnlab
