#include "analysis/preflight.h"

#include <algorithm>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "analysis/concurrency.h"
#include "analysis/tuple_budget.h"
#include "common/fd_limit.h"

namespace churnlab::analysis {
namespace {

// Descriptors the agent needs for itself (gRPC, epoll, logs).

// The warning for the agent's sources of `limit` that are asked for more than their budget,
// or "" when none are.
std::string PortWarning(const std::string& agent, const v1::TupleBudget& budget,
                        v1::PortLimit limit, const RunShape& shape) {
  const v1::SourceBudget* worst = nullptr;
  for (const v1::SourceBudget& s : budget.sources()) {
    if (s.agent() != agent || s.limit() != limit || s.requested_rate() <= s.budget_rate()) {
      continue;
    }
    if (worst == nullptr || s.requested_rate() > worst->requested_rate()) worst = &s;
  }
  if (worst == nullptr) return "";
  const v1::SourceBudget& s = *worst;
  if (PortLimitBinds(limit)) {
    bool ends_first = shape.duration_s > 0 && s.exhaustion_after_s() > shape.duration_s;
    return absl::StrFormat(
        "agent %s: at %.0f conn/s per source IP its %d ports x %d destination(s) would run out "
        "after ~%ss (budget %.0f conn/s per source with %gs %s); %s",
        agent, s.requested_rate(), s.ports(), s.destinations(),
        ApproxSeconds(s.exhaustion_after_s()), s.budget_rate(), s.hold_s(),
        limit == v1::PORT_LIMIT_TIME_WAIT ? "TIME_WAIT" : absl::StrCat("of ", HoldName(limit)),
        ends_first ? absl::StrFormat("the %.0fs run ends first", shape.duration_s)
        : BindReservesPort(shape.bind) ? "expect EADDRINUSE from bind()"
                                       : "expect EADDRNOTAVAIL");
  }
  return absl::StrFormat(
      "agent %s: at %.0f conn/s per source IP (budget %.0f conn/s) TIME_WAIT would fill its "
      "%d ports x %d destination(s), but tcp_max_tw_buckets is lower: the kernel will destroy "
      "TIME_WAIT sockets early (TCPTimeWaitOverflow) instead, so expect no EADDRNOTAVAIL, and "
      "no TIME_WAIT protection against late segments either",
      agent, s.requested_rate(), s.budget_rate(), s.ports(), s.destinations());
}

// The destinations a source IP's ports are counted toward: each target, or one under bind
// mode "bind" (bind(ip, 0) reserves a port toward all of them).
uint64_t Destinations(const RunShape& shape) {
  return BindReservesPort(shape.bind) ? 1 : std::max<size_t>(1, shape.targets.size());
}

// Closed model: connections held at once need a four-tuple each. Over its ports x destinations
// per source IP, the surplus fails at once (EADDRNOTAVAIL, or EADDRINUSE where bind() picks the
// port), whatever TIME_WAIT does.
std::string TupleWarning(const RunShape& shape, const ShardFacts& shard) {
  uint64_t ports = PortCount(*shard.hello);
  if (shard.rate > 0 || ports == 0 || shard.in_flight <= 0) return "";
  uint64_t destinations = Destinations(shape);
  uint64_t sources = std::max<size_t>(1, shard.sources.size());
  uint64_t tuples = ports * destinations * sources;
  if (static_cast<uint64_t>(shard.in_flight) <= tuples) return "";
  bool bind_picks = BindReservesPort(shape.bind);
  return absl::StrFormat(
      "agent %s: concurrency %d needs a four-tuple per connection, but %d source IP(s) x %d "
      "ports x %d destination(s) give only %d: the rest fail with %s at once (%s)",
      shard.hello->name(), shard.in_flight, sources, ports, destinations, tuples,
      bind_picks ? "EADDRINUSE from bind()" : "EADDRNOTAVAIL",
      bind_picks ? "bind mode no-port with more source IPs or destinations"
                 : "add source IPs or destinations");
}

// Memory for connections held at once on the agent's host: about 5.1 KB of kernel memory a
// socket (TCP, inode, dentry, file, epoll entry: bench/RESULTS.md measured 10.3 KB for both
// ends of a loopback connection) and a few hundred bytes of the engine's.
constexpr uint64_t kBytesPerHeldConnection = 5500;

// Which kernel an agent runs on: its boot id, or the agent itself when it gives none.
std::string KernelKey(const v1::Hello& hello) {
  const std::string boot = BootIdOf(hello);
  return boot.empty() ? "agent " + hello.name() : boot;
}

// Sockets a connection takes on the agent's kernel: both ends when every target is a loopback
// one (the target runs on that kernel too), else the agent's end.
uint64_t SocketsPerConnection(const RunShape& shape) { return shape.all_targets_loopback ? 2 : 1; }

// The connections a shard holds at once: the closed model's concurrency; the open model's rate
// times how long each stays open (its hold and about a second of exchange), up to its cap.
uint64_t HeldAtOnce(const v1::RunSpec& spec, const ShardFacts& shard) {
  if (shard.in_flight <= 0) return 0;
  uint64_t cap = static_cast<uint64_t>(shard.in_flight);
  if (shard.rate <= 0) return cap;
  double open_s = 1 + spec.hold().seconds() + spec.hold().nanos() / 1e9;
  return std::min(cap, static_cast<uint64_t>(shard.rate * open_s));
}

// fs.file-max and memory are a kernel's (its boot id), shared by every network namespace on it:
// two agents in two namespaces of one host draw on one pool, so their shares are summed per
// kernel. A loopback target runs on that kernel too, and each connection then costs it both
// ends. Agents that give no boot id count as a kernel each.
std::vector<std::string> KernelWarnings(const v1::RunSpec& spec, const RunShape& shape,
                                        std::span<const ShardFacts> shards) {
  struct Kernel {
    std::vector<std::string> agents;
    uint64_t held = 0;
    std::optional<int64_t> file_max;
    uint64_t available = 0;
  };
  std::map<std::string, Kernel> kernels;
  for (const ShardFacts& shard : shards) {
    const uint64_t held = HeldAtOnce(spec, shard);
    if (held == 0) continue;
    Kernel& kernel = kernels[KernelKey(*shard.hello)];
    kernel.agents.push_back(shard.hello->name());
    kernel.held += held;
    if (auto file_max = SysctlInt(*shard.hello, "fs.file-max")) kernel.file_max = file_max;
    kernel.available = std::max(kernel.available, shard.hello->mem_available_bytes());
  }
  const uint64_t ends = SocketsPerConnection(shape);
  std::vector<std::string> warnings;
  for (const auto& [id, kernel] : kernels) {
    const bool one = kernel.agents.size() == 1;
    const std::string agents =
        one ? absl::StrCat("agent ", kernel.agents[0])
            : absl::StrCat("agents ", absl::StrJoin(kernel.agents, ", "), " (one kernel)");
    const std::string held =
        one ? absl::StrFormat("its share of %d connections at once", kernel.held)
            : absl::StrFormat("their %d connections at once in all", kernel.held);
    const uint64_t sockets = kernel.held * ends;
    const std::string both =
        ends == 2 ? absl::StrFormat(" (%d sockets: the target is on this host too)", sockets) : "";
    if (kernel.file_max && *kernel.file_max > 0 &&
        sockets > static_cast<uint64_t>(*kernel.file_max)) {
      warnings.push_back(absl::StrFormat(
          "%s: %s%s %s past %s host's fs.file-max of %d (ENFILE beyond; raise fs.file-max or "
          "add agents on other hosts)",
          agents, held, both, one ? "is" : "are", one ? "its" : "their", *kernel.file_max));
    } else if (kernel.available > 0 && sockets * kBytesPerHeldConnection > kernel.available) {
      warnings.push_back(absl::StrFormat(
          "%s: %s%s %s about %d MiB (~5.5 KB a socket, most of it the kernel's), more than "
          "the %d MiB %s host had available: expect ENOBUFS, ENOMEM or the OOM killer (add "
          "agents on other hosts, or memory)",
          agents, held, both, one ? "takes" : "take", sockets * kBytesPerHeldConnection >> 20,
          kernel.available >> 20, one ? "its" : "their"));
    }
  }
  return warnings;
}

// Ports of the agent's range its last census found held on its host (any address, state or
// program) before the run: connect() skips every one bind() took, from every source IP. Said
// when bind()'s are a tenth of the range or more; where the agent could not ask the kernel which
// were bind()'s, when all held ports are.
std::string HeldPortsWarning(const ShardFacts& shard) {
  const v1::Hello& hello = *shard.hello;
  const uint64_t range = PortCount(hello);
  if (!shard.range_at_start.has_value() || range == 0) return "";
  const v1::PortsAtStart& at_start = *shard.range_at_start;
  if (at_start.bind_taken_known()) {
    // Ports connect() took elsewhere block only their own four-tuples: bind()'s block them all.
    const uint64_t taken = std::min(at_start.bind_taken(), range);
    if (taken * 10 < range) return "";
    return absl::StrFormat(
        "agent %s: bind() had taken %d of its %d ports on its host a moment ago (any address or "
        "program, %d of them listeners'): connect() skips them from every source IP, so its "
        "budget counts the %d left (free them, run those clients with bind mode no-port, or "
        "widen net.ipv4.ip_local_port_range)",
        hello.name(), taken, range, at_start.listening(), range - taken);
  }
  const uint64_t held = at_start.in_use();
  if (held * 10 < range) return "";
  return absl::StrFormat(
      "agent %s: %d of its %d ports were held by sockets on its host a moment ago (other "
      "addresses or programs, an earlier run's TIME_WAIT; %d by listeners): connect() skips "
      "every port bind() took, from any source IP (the agent could not ask the kernel which "
      "were bind()'s), so expect EADDRNOTAVAIL sooner than the budget says (free them, or "
      "widen net.ipv4.ip_local_port_range)",
      hello.name(), std::min(held, range), range, shard.range_at_start->listening());
}

}  // namespace

uint64_t HoldCapacity(const v1::RunSpec& spec, const ShardFacts& shard, uint32_t agents_on_kernel) {
  return HoldCapacity(ShapeOf(spec), shard, agents_on_kernel);
}

uint64_t HoldCapacity(const RunShape& shape, const ShardFacts& shard, uint32_t agents_on_kernel) {
  const v1::Hello& hello = *shard.hello;
  // The kernel's part of this agent, in sockets; each connection takes SocketsPerConnection.
  const uint64_t sharing = std::max<uint32_t>(1, agents_on_kernel) * SocketsPerConnection(shape);
  uint64_t capacity = 0;
  auto bound = [&](uint64_t limit) {
    if (limit > 0) capacity = capacity == 0 ? limit : std::min(capacity, limit);
  };
  bound(PortCount(hello) * Destinations(shape) * std::max<size_t>(1, shard.sources.size()));
  bound(hello.mem_available_bytes() / kBytesPerHeldConnection / sharing);
  // fs.file-max (often 2^63 - 1) only lowers a known bound: alone it says nothing of the host.
  if (std::optional<int64_t> file_max = SysctlInt(hello, "fs.file-max");
      capacity > 0 && file_max && *file_max > 0) {
    bound(static_cast<uint64_t>(*file_max) / sharing);
  }
  return capacity;
}

std::vector<uint32_t> AgentsPerKernel(std::span<const v1::Hello* const> hellos) {
  std::map<std::string, uint32_t> agents;
  for (const v1::Hello* hello : hellos) ++agents[KernelKey(*hello)];
  std::vector<uint32_t> out;
  for (const v1::Hello* hello : hellos) out.push_back(agents[KernelKey(*hello)]);
  return out;
}

std::vector<std::string> PreflightWarnings(const v1::RunSpec& spec,
                                           std::span<const ShardFacts> shards) {
  return PreflightWarnings(spec, ShapeOf(spec), shards);
}

std::vector<std::string> PreflightWarnings(const v1::RunSpec& spec, const RunShape& shape,
                                           std::span<const ShardFacts> shards) {
  v1::TupleBudget budget = ComputeTupleBudget(spec, shape, shards);
  std::vector<std::string> warnings;
  for (const ShardFacts& shard : shards) {
    const v1::Hello& hello = *shard.hello;
    // One process's fd limit does not cap a shard: the agent splits it over engine processes
    // (agent/engine_processes.h), and says so here first.
    const int64_t fds = hello.fd_limit();
    const uint64_t processes =
        fds > 0 && shard.in_flight > 0
            ? ProcessesFor(static_cast<uint64_t>(shard.in_flight), static_cast<uint64_t>(fds))
            : 1;
    if (processes > 1) {
      warnings.push_back(absl::StrFormat(
          "agent %s: its share of %d connections at once is past its fd limit %d: it runs them "
          "in %d engine processes",
          hello.name(), shard.in_flight, fds, processes));
    }
    std::string tuples = TupleWarning(shape, shard);
    if (!tuples.empty()) warnings.push_back(std::move(tuples));
    std::string held = HeldPortsWarning(shard);
    if (!held.empty()) warnings.push_back(std::move(held));
    for (v1::PortLimit limit : {v1::PORT_LIMIT_TIME_WAIT, v1::PORT_LIMIT_TW_REUSE,
                                v1::PORT_LIMIT_TAKEN_OVER, v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS}) {
      std::string warning = PortWarning(hello.name(), budget, limit, shape);
      if (!warning.empty()) warnings.push_back(std::move(warning));
    }
  }
  for (std::string& warning : KernelWarnings(spec, shape, shards)) {
    warnings.push_back(std::move(warning));
  }
  return warnings;
}

}  // namespace churnlab::analysis
