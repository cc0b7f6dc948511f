// Host-wide TCP counters from /proc/net/netstat and /proc/net/snmp, and socket totals from
// /proc/net/sockstat: what the kernel did that no client sees directly (listen overflows,
// TIME_WAIT recycling, SYN retransmits).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace churnlab {

// The counters churnlab reports, by their /proc names ("ListenOverflows", "ActiveOpens", ...).
const std::vector<std::string>& ReportedKernelCounters();

// Every "Prefix: Name ..." / "Prefix: value ..." pair of lines of a /proc/net/netstat- or
// snmp-style text, keyed by Name (the first prefix wins when two share a name).
std::map<std::string, int64_t> ParseProcNetCounters(const std::string& text);

// The reported counters read now; NOT_FOUND when /proc/net is not readable.
absl::StatusOr<std::map<std::string, int64_t>> ReadKernelCounters();

struct SocketTotals {
  uint64_t tcp_in_use = 0;
  uint64_t tcp_time_wait = 0;
  uint64_t tcp_orphans = 0;
  uint64_t tcp_established = 0;
};
SocketTotals ReadSocketTotals();

}  // namespace churnlab
