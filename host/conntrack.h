// Connection tracking (netfilter's conntrack table) as this network namespace sees it: entries
// now, the table's size, and the per-CPU counters of flows it could not track. Every connection
// through a NAT (a Service's DNAT, a node's SNAT) or a stateful firewall takes an entry, kept
// 120 s after a close by default; a full table drops new flows, and a NAT out of ports fails to
// insert them.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace churnlab {

struct ConntrackStats {
  // Entries in this namespace's table (nf_conntrack_count) and the table's size
  // (nf_conntrack_max, one for the whole kernel); 0 when unknown.
  uint64_t count = 0;
  uint64_t max = 0;
  // Summed over CPUs: a new flow's entry could not be inserted (a clash, e.g. a NAT with no free
  // port for it), packets dropped for want of an entry (a full table), entries evicted early to
  // make room.
  uint64_t insert_failed = 0;
  uint64_t drop = 0;
  uint64_t early_drop = 0;
};

// Parses /proc/net/stat/nf_conntrack: a header naming the columns, then one line per CPU of
// hexadecimal values ("entries" is the namespace's count, the same on every line). The counters
// are summed over the CPU lines. INVALID_ARGUMENT when the header lacks a column this reads or a
// value is not hexadecimal.
absl::StatusOr<ConntrackStats> ParseConntrackStat(absl::string_view text);

// The stats of this network namespace, read from `proc` (normally "/proc"): count and max from
// sys/net/netfilter, the rest from net/stat/nf_conntrack. NOT_FOUND when the kernel has no
// conntrack (the files are absent).
absl::StatusOr<ConntrackStats> ReadConntrack(const std::string& proc = "/proc");

// The counters as kernel counters ("ConntrackInsertFailed", "ConntrackDrop",
// "ConntrackEarlyDrop"), reported as deltas beside ListenOverflows and the rest.
std::map<std::string, int64_t> ConntrackCounters(const ConntrackStats& stats);

}  // namespace churnlab
