#include "common/address_file.h"

#include "common/whole_file.h"

namespace churnlab {

absl::Status WriteAddressFile(const std::string& path, const std::string& text) {
  return WriteWholeFile(path, text + "\n");
}

}  // namespace churnlab
