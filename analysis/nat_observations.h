// Sentences on what lies between the agents and the target: a conntrack table that filled or
// could not insert new flows, and a NAT that rewrote the agents' sources (its addresses and
// ports, not the agents', are then the four-tuple budget).
#pragma once

#include <string>
#include <vector>

#include "churnlab/v1/report.pb.h"

namespace churnlab::analysis {

// Appends to `out`: per host whose conntrack table was full or dropped flows (from each agent's
// and observer's `conntrack` and their Conntrack* kernel counters), why; and when an observer of
// the targets saw the connections come from addresses that are no agent's source, that a NAT
// rewrote them and whose budget binds.
void ObserveConntrackAndNat(const v1::RunReport& report, std::vector<std::string>* out);

}  // namespace churnlab::analysis
