// Warnings given at StartRun about limits a run will hit, judged from the chosen agents' hellos
// before any connection is made. Built on the same tuple budget as the report, so the two agree.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "analysis/run_shape.h"
#include "churnlab/v1/spec.pb.h"

namespace churnlab::analysis {

// Plain-word warnings, one per agent and limit: an fd limit below its share of connections in
// flight; source IPs whose ports run out at their share (expect EADDRNOTAVAIL, and when); a
// tcp_max_tw_buckets that makes the kernel destroy TIME_WAIT sockets early instead.
std::vector<std::string> PreflightWarnings(const v1::RunSpec& spec,
                                           std::span<const ShardFacts> shards);
// The same with the spec's strings already parsed (`shape`, ShapeOf(spec)).
std::vector<std::string> PreflightWarnings(const v1::RunSpec& spec, const RunShape& shape,
                                           std::span<const ShardFacts> shards);

// How many connections the agent behind `shard.hello` can hold open at once with the share's
// source IPs: the least of its four-tuples (ports x destinations x source IPs), its kernel's
// fs.file-max, and its kernel's available memory at ~5.5 KB a socket (kernel and engine). The
// kernel's pool is shared: `agents_on_kernel` agents draw on it (one boot id, any namespaces;
// AgentsPerKernel), and a loopback target's end of each connection is on it too. The same rule
// as the preflight's warnings. Engine processes lift the per-process fd limit, so it is not a
// bound here. 0 when the hello gives neither ports nor memory (an older agent).
uint64_t HoldCapacity(const v1::RunSpec& spec, const ShardFacts& shard,
                      uint32_t agents_on_kernel = 1);
uint64_t HoldCapacity(const RunShape& shape, const ShardFacts& shard,
                      uint32_t agents_on_kernel = 1);

// For each hello, how many of `hellos` run on its kernel (its boot id; one that gives none is a
// kernel of its own).
std::vector<uint32_t> AgentsPerKernel(std::span<const v1::Hello* const> hellos);

}  // namespace churnlab::analysis
