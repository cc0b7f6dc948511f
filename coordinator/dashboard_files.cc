#include "coordinator/dashboard_files.h"

#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace churnlab {
namespace {

std::string ContentTypeFor(absl::string_view path) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".map", "application/json"},
      {".txt", "text/plain"}};
  for (const auto& [ext, type] : kTypes) {
    if (absl::EndsWith(path, ext)) return type;
  }
  return "application/octet-stream";
}

}  // namespace

std::string FindDashboardDir() {
  std::error_code error;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return "";
  std::filesystem::path bin = exe.parent_path();
  for (const std::filesystem::path& candidate : {bin.parent_path().parent_path() / "dashboard",
                                                 bin.parent_path() / "share/churnlab/dashboard"}) {
    if (std::filesystem::exists(candidate / "static/index.html", error)) return candidate.string();
  }
  return "";
}

absl::StatusOr<StaticFile> ResolveStaticFile(const std::string& dashboard_dir,
                                             absl::string_view url_path) {
  const absl::Status not_found = absl::NotFoundError(absl::StrCat("no file ", url_path));
  if (dashboard_dir.empty() || !absl::StartsWith(url_path, "/")) return not_found;
  std::string root = dashboard_dir + "/static";
  absl::string_view rest = url_path.substr(1);
  if (absl::StartsWith(url_path, "/vendor/uplot/")) {
    root = dashboard_dir + "/node_modules/uplot/dist";
    rest = url_path.substr(absl::string_view("/vendor/uplot/").size());
  }
  if (rest.empty()) rest = "index.html";
  for (absl::string_view segment : absl::StrSplit(rest, '/')) {
    if (segment.empty() || segment[0] == '.' || absl::StrContains(segment, '%') ||
        absl::StrContains(segment, '\\')) {
      return not_found;
    }
  }
  std::string path = absl::StrCat(root, "/", rest);
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return not_found;
  return StaticFile{path, ContentTypeFor(path)};
}

}  // namespace churnlab
