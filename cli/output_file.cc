#include "cli/output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace churnlab {

absl::Status CheckOutputFile(const std::string& flag, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  // An existing file must be writable; a new one needs a directory it can be made in.
  const bool exists = access(path.c_str(), F_OK) == 0;
  const int rc = exists ? access(path.c_str(), W_OK) : access(dir.c_str(), W_OK | X_OK);
  if (rc == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", path, ": cannot write ",
                                                 exists ? "that file" : "a file there", ": ",
                                                 std::strerror(errno)));
}

absl::Status WriteOutputFile(const std::string& path, const std::string& text,
                             const std::string& what) {
  auto failed = [&](int err) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", what, " to ", path, ": ", std::strerror(err)));
  };
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return failed(errno);
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return failed(err);
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0) return failed(errno);  // NFS and the like report a failed write here
  return absl::OkStatus();
}

}  // namespace churnlab
