#include "host/conntrack.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "host/proc_file.h"

namespace churnlab {
namespace {

bool ReadNumber(const std::string& path, uint64_t* out) {
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadProcFile(path)), out);
}

}  // namespace

absl::StatusOr<ConntrackStats> ParseConntrackStat(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  if (lines.empty()) return absl::InvalidArgumentError("nf_conntrack stats: empty");
  std::vector<absl::string_view> header = absl::StrSplit(lines[0], ' ', absl::SkipEmpty());
  auto column = [&](absl::string_view name) {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    return -1;
  };
  const int entries = column("entries");
  const int insert_failed = column("insert_failed");
  const int drop = column("drop");
  const int early_drop = column("early_drop");
  if (entries < 0 || insert_failed < 0 || drop < 0 || early_drop < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("nf_conntrack stats: header lacks a column: '", lines[0], "'"));
  }
  ConntrackStats stats;
  for (size_t l = 1; l < lines.size(); ++l) {
    std::vector<absl::string_view> values = absl::StrSplit(lines[l], ' ', absl::SkipEmpty());
    if (values.size() != header.size()) {
      return absl::InvalidArgumentError(absl::StrCat("nf_conntrack stats: line ", l + 1, " has ",
                                                     values.size(), " values for ", header.size(),
                                                     " columns"));
    }
    auto hex = [&](int i, uint64_t* out) {
      uint64_t v = 0;
      if (!absl::SimpleHexAtoi(values[i], &v)) return false;
      *out = v;
      return true;
    };
    uint64_t count = 0, failed = 0, dropped = 0, early = 0;
    if (!hex(entries, &count) || !hex(insert_failed, &failed) || !hex(drop, &dropped) ||
        !hex(early_drop, &early)) {
      return absl::InvalidArgumentError(
          absl::StrCat("nf_conntrack stats: line ", l + 1, " is not hexadecimal"));
    }
    stats.count = count;  // the namespace's count, repeated on every CPU's line
    stats.insert_failed += failed;
    stats.drop += dropped;
    stats.early_drop += early;
  }
  return stats;
}

absl::StatusOr<ConntrackStats> ReadConntrack(const std::string& proc) {
  // Present, the file always holds its header line: empty means absent (no conntrack module).
  const std::string text = ReadProcFile(proc + "/net/stat/nf_conntrack");
  if (text.empty()) {
    return absl::NotFoundError(absl::StrCat(proc, "/net/stat/nf_conntrack: no conntrack"));
  }
  absl::StatusOr<ConntrackStats> stats = ParseConntrackStat(text);
  if (!stats.ok()) return stats.status();
  uint64_t count = 0;
  if (ReadNumber(proc + "/sys/net/netfilter/nf_conntrack_count", &count)) stats->count = count;
  ReadNumber(proc + "/sys/net/netfilter/nf_conntrack_max", &stats->max);
  return stats;
}

std::map<std::string, int64_t> ConntrackCounters(const ConntrackStats& stats) {
  return {{"ConntrackInsertFailed", static_cast<int64_t>(stats.insert_failed)},
          {"ConntrackDrop", static_cast<int64_t>(stats.drop)},
          {"ConntrackEarlyDrop", static_cast<int64_t>(stats.early_drop)}};
}

}  // namespace churnlab
