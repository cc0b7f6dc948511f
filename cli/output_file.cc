#include "cli/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace churnlab {
namespace {

// The directory a new file at `path` goes in.
std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Writes all of `text` to `fd`; 0 or the errno of the write that failed.
int WriteAll(int fd, const std::string& text) {
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;  // no progress: never loop on it
    done += static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

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
  auto failed = [&](int err) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", what, " to ", path, ": ", std::strerror(err)));
  };
  // Into a file of its own beside `path`, renamed over it once whole: a write that fails
  // halfway (a full disk) leaves the old file, or none, never a cut-off one.
  std::string temporary = absl::StrCat(DirectoryOf(path), "/.churnlab-XXXXXX");
  const int fd = mkstemp(temporary.data());
  if (fd < 0) return failed(errno);
  int err = fchmod(fd, 0644) == 0 ? WriteAll(fd, text) : errno;
  if (close(fd) != 0 && err == 0) err = errno;  // NFS and the like report a failed write here
  if (err == 0 && rename(temporary.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    unlink(temporary.c_str());
    return failed(err);
  }
  return absl::OkStatus();
}

}  // namespace churnlab
