// What the coordinator accepts of an agent's (or an observer's) Hello, first or updated: every
// field an agent sends is bounded, so a token holder cannot grow the coordinator without limit.
// The limits are far above what a real agent sends (7 sysctls, a host name, a few addresses).
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "churnlab/v1/agent.pb.h"
#include "common/net_address.h"

namespace churnlab {

inline constexpr size_t kMaxAgentNameLength = 128;
// Host names are at most 253 characters in DNS (64 on Linux's uname).
inline constexpr size_t kMaxHostLength = 255;
inline constexpr size_t kMaxVersionLength = 64;
inline constexpr size_t kMaxKernelIdLength = 128;
inline constexpr int kMaxHelloSourceIps = 4096;
inline constexpr int kMaxAllowTargets = 256;
inline constexpr int kMaxListenAddresses = 256;
inline constexpr int kMaxSysctls = 64;
// Agents one listing may ask for in full (ListAgentsRequest.names).
inline constexpr int kMaxAgentsInFull = 64;
inline constexpr size_t kMaxSysctlKeyLength = 128;
inline constexpr size_t kMaxSysctlValueLength = 256;
// An agent's --max-in-flight, at most (its --max-rate: kMaxRate).
inline constexpr int64_t kMaxAgentInFlight = 1'000'000'000;

// OK, or INVALID_ARGUMENT "hello.FIELD: ..." naming the field and its limit: a name that is
// empty, too long or holds control characters; a string over its length limit; a list over its
// count limit or an item of it that does not parse (source_ips as IPs, allow_targets as CIDRs,
// listen_addresses as ip:port); a port range outside 0..65535 or upside down; caps that are not
// finite or outside their range.
absl::Status ValidateHello(const v1::Hello& hello);

// A validated hello's addresses, parsed once where it enters: the rest passes these on. Its
// source IPs in its order, and the addresses an observer listens on (ip:port).
std::vector<SocketAddress> SourceAddressesOf(const v1::Hello& hello);
std::vector<SocketAddress> ListenAddressesOf(const v1::Hello& hello);

}  // namespace churnlab
