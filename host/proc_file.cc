#include "host/proc_file.h"

#include <fstream>
#include <sstream>

namespace churnlab {

std::string ReadProcFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  // operator<<(streambuf*) turns a failed read into the stream's failbit (no exception is
  // enabled on `text`), where a streambuf iterator would let it out.
  std::stringstream text;
  text << in.rdbuf();
  return text.fail() ? "" : text.str();
}

}  // namespace churnlab
