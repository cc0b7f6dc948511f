// Writing a file whole: into a file of its own beside the path, renamed over it once complete,
// so that a reader never sees half of it and a write that fails halfway (a full disk) leaves
// the old file, or none, never a cut-off one.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace churnlab {

// The directory a new file at `path` is made in ("." for a bare name).
std::string DirectoryOf(const std::string& path);

// Writes `text` to `path`. Otherwise the errno status of the call that failed, "PATH: reason"
// (the kernel's), and nothing is left beside `path`.
absl::Status WriteWholeFile(const std::string& path, const std::string& text);

}  // namespace churnlab
