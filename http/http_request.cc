// HttpServerRequest's lookups: a header by its lower-case name, a query parameter decoded.
#include <event2/http.h>

#include <cstdlib>

#include "absl/strings/str_split.h"
#include "http/http_server.h"

namespace churnlab {

std::string HttpServerRequest::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "";
}

bool HttpServerRequest::HasHeader(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return true;
  }
  return false;
}

std::string HttpServerRequest::QueryParam(absl::string_view name) const {
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    absl::string_view key = pair.substr(0, pair.find('='));
    if (key != name) continue;
    if (key.size() == pair.size()) return "";
    std::string raw(pair.substr(key.size() + 1));
    char* decoded = evhttp_uridecode(raw.c_str(), /*decode_plus=*/1, nullptr);
    std::string out = decoded != nullptr ? decoded : "";
    free(decoded);
    return out;
  }
  return "";
}

}  // namespace churnlab
