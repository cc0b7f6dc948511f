#include "common/errno_name.h"

#include <string.h>

#include "absl/strings/str_cat.h"

namespace churnlab {

std::string ErrnoName(int err) {
  if (err == 0) return "OK";
  const char* name = strerrorname_np(err);
  if (name == nullptr) return absl::StrCat("E", err);
  return name;
}

int ErrnoFromName(const std::string& name) {
  for (int err = 1; err <= kMaxTrackedErrno; ++err) {
    const char* known = strerrorname_np(err);
    if (known != nullptr && name == known) return err;
  }
  return -1;
}

}  // namespace churnlab
