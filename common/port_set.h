// A set of TCP ports, 0..65535, a bit each.
#pragma once

#include <bitset>

namespace churnlab {

using PortSet = std::bitset<65536>;

}  // namespace churnlab
