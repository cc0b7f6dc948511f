#include "common/whole_file.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace churnlab {
namespace {

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

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

absl::Status WriteWholeFile(const std::string& path, const std::string& text) {
  std::string temporary = absl::StrCat(DirectoryOf(path), "/.churnlab-XXXXXX");
  const int fd = mkstemp(temporary.data());
  if (fd < 0) return absl::ErrnoToStatus(errno, path);
  int err = fchmod(fd, 0644) == 0 ? WriteAll(fd, text) : errno;
  if (close(fd) != 0 && err == 0) err = errno;  // NFS and the like report a failed write here
  if (err == 0 && rename(temporary.c_str(), path.c_str()) != 0) err = errno;
  if (err == 0) return absl::OkStatus();
  unlink(temporary.c_str());
  return absl::ErrnoToStatus(err, path);
}

}  // namespace churnlab
