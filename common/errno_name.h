// Symbolic errno names ("EADDRNOTAVAIL"), the vocabulary of every failure churnlab reports.
#pragma once

#include <string>

namespace churnlab {

// The largest errno value the counters keep apart; larger values share the last slot.
inline constexpr int kMaxTrackedErrno = 140;

// Returns "EADDRNOTAVAIL" for EADDRNOTAVAIL, "OK" for 0 and "E<n>" for values glibc does not name.
std::string ErrnoName(int err);

// Reverse of ErrnoName for names glibc knows; returns -1 when `name` is not an errno name.
int ErrnoFromName(const std::string& name);

}  // namespace churnlab
