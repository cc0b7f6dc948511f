#include "host/kernel_counters.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "host/proc_file.h"

namespace churnlab {

const std::vector<std::string>& ReportedKernelCounters() {
  static const auto* names = new std::vector<std::string>{
      "ListenOverflows",  "ListenDrops",    "TCPTimeWaitOverflow", "TW",           "TWRecycled",
      "TWKilled",         "ActiveOpens",    "PassiveOpens",        "AttemptFails", "EstabResets",
      "TCPAbortOnClose",  "TCPAbortOnData", "TCPSynRetrans",       "RetransSegs",  "OutRsts",
      "TCPAbortOnTimeout"};
  return *names;
}

std::map<std::string, int64_t> ParseProcNetCounters(const std::string& text) {
  std::map<std::string, int64_t> out;
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  for (size_t i = 0; i + 1 < lines.size(); i += 2) {
    std::vector<absl::string_view> names = absl::StrSplit(lines[i], ' ', absl::SkipEmpty());
    std::vector<absl::string_view> values = absl::StrSplit(lines[i + 1], ' ', absl::SkipEmpty());
    if (names.empty() || values.empty() || names[0] != values[0]) continue;  // out of step
    for (size_t j = 1; j < names.size() && j < values.size(); ++j) {
      int64_t value = 0;
      if (absl::SimpleAtoi(values[j], &value)) out.emplace(std::string(names[j]), value);
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, int64_t>> ReadKernelCounters() {
  std::map<std::string, int64_t> all = ParseProcNetCounters(ReadProcFile("/proc/net/netstat"));
  std::map<std::string, int64_t> snmp = ParseProcNetCounters(ReadProcFile("/proc/net/snmp"));
  all.insert(snmp.begin(), snmp.end());
  if (all.empty()) return absl::NotFoundError("/proc/net/netstat and /proc/net/snmp unreadable");
  std::map<std::string, int64_t> out;
  for (const std::string& name : ReportedKernelCounters()) {
    auto it = all.find(name);
    if (it != all.end()) out[name] = it->second;
  }
  return out;
}

SocketTotals ReadSocketTotals() {
  SocketTotals totals;
  // "TCP: inuse 5 orphan 0 tw 12 alloc 7 mem 1"
  for (absl::string_view line : absl::StrSplit(ReadProcFile("/proc/net/sockstat"), '\n')) {
    if (!absl::StartsWith(line, "TCP:")) continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    for (size_t i = 1; i + 1 < f.size(); i += 2) {
      uint64_t v = 0;
      if (!absl::SimpleAtoi(f[i + 1], &v)) continue;
      if (f[i] == "inuse") totals.tcp_in_use = v;
      if (f[i] == "tw") totals.tcp_time_wait = v;
      if (f[i] == "orphan") totals.tcp_orphans = v;
    }
  }
  std::map<std::string, int64_t> snmp = ParseProcNetCounters(ReadProcFile("/proc/net/snmp"));
  auto established = snmp.find("CurrEstab");
  if (established != snmp.end())
    totals.tcp_established = static_cast<uint64_t>(established->second);
  return totals;
}

}  // namespace churnlab
