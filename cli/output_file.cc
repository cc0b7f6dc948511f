#include "cli/output_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/whole_file.h"

namespace churnlab {
absl::Status CheckOutputFile(const std::string& flag, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  auto refused = [&](const char* what, const char* why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", path, ": cannot write ", what, ": ", why));
  };
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return refused("that", std::strerror(EISDIR));
    if (access(path.c_str(), W_OK) != 0) return refused("that file", std::strerror(errno));
    return absl::OkStatus();
  }
  // A new file: its directory must let one be made (and renamed into place).
  if (access(DirectoryOf(path).c_str(), W_OK | X_OK) != 0) {
    return refused("a file there", std::strerror(errno));
  }
  return absl::OkStatus();
}

absl::Status WriteOutputFile(const std::string& path, const std::string& text,
                             const std::string& what) {
  absl::Status written = WriteWholeFile(path, text);
  if (written.ok()) return written;
  return absl::UnavailableError(absl::StrCat("cannot write ", what, " to ", written.message()));
}

}  // namespace churnlab
