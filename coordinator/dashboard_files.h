// Where the dashboard's files are and which file an URL path names: the page (static/) and the
// chart library as npm installed it (node_modules/uplot/dist), served by HttpApi.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace churnlab {

// The dashboard directory next to the running binary: <prefix>/dashboard for build/bin/X, or
// <prefix>/share/churnlab/dashboard for an installed <prefix>/bin/X; "" when neither exists.
std::string FindDashboardDir();

// The file an URL path names under the dashboard directory: "/vendor/uplot/X" is
// node_modules/uplot/dist/X, anything else static/X ("/" is static/index.html); with its
// Content-Type. NOT_FOUND for a path with "..", a hidden or encoded segment, or no such file.
struct StaticFile {
  std::string path;
  std::string content_type;
};
absl::StatusOr<StaticFile> ResolveStaticFile(const std::string& dashboard_dir,
                                             absl::string_view url_path);

}  // namespace churnlab
