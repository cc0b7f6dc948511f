// The tuple budget: how many new connections per second each source IP can sustain before its
// four-tuples run out, from what the agents reported (port range, tcp_tw_reuse,
// tcp_max_tw_buckets, source IPs), their shares and the spec. The one computation of it: the
// preflight warnings, the report, `churnlab compare` and the dashboard all read it from here,
// and `churnlab budget` plans with it for a host described by flags (tuple_budget_plan.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "analysis/run_shape.h"
#include "churnlab/v1/report.pb.h"
#include "churnlab/v1/spec.pb.h"
#include "common/time_wait.h"

namespace churnlab::analysis {

// What one source IP's budget follows from, whether an agent reported it (its hello) or the
// planner was told (`churnlab budget`).
struct SourceFacts {
  uint64_t ports = 0;         // in the local port range; 0 when unknown
  uint32_t destinations = 1;  // destination ip:ports it can use each port for (1 under bind)
  double time_wait_s = kTimeWaitSeconds;
  ClosePolicy close = ClosePolicy::kClientFin;
  // Where tcp_tw_reuse applies (1, or 2 on a loopback connection) and TCP timestamps are on:
  // tcp_tw_reuse_delay, after which a new connection takes over a TIME_WAIT tuple. 0: no reuse.
  double reuse_delay_s = 0;
  // Bind mode engine where the connections have TCP timestamps (BoundConnectTakesOver): each
  // TIME_WAIT is taken over kTakeoverWaitSeconds or more after the close.
  bool taken_over = false;
};

// One source: ports x destinations / the seconds a closed tuple is held (hold_s: TIME_WAIT, or
// the reuse delay where reuse applies) as budget_rate, what bounds it (limit), and at
// `requested_rate` when its ports run out (exhaustion_after_s). The one computation of it, for
// reports and the planner alike.
v1::SourceBudget BudgetOfSource(const SourceFacts& facts, double requested_rate);

// Seconds as a prediction reads them: whole from 10 s up, two digits below ("0.2", "5").
std::string ApproxSeconds(double seconds);
// Seconds as the planner prints them: tenths ("28.2"), two digits under 0.1 s ("0.001").
std::string PlanSeconds(double seconds);

// Whether a source with this limit can run out of ports (TIME_WAIT, the reuse delay, or the
// engine's wait before a takeover).
bool PortLimitBinds(v1::PortLimit limit);

// What holds a closed tuple under `limit`, for "N s of ...": "TIME_WAIT", "tcp_tw_reuse_delay",
// or bind mode engine's wait before it takes a TIME_WAIT over.
const char* HoldName(v1::PortLimit limit);

// Per (agent, source IP): ports x destinations / TIME_WAIT seconds, the share asked of it, when
// its ports run out at that share, and whether TIME_WAIT binds at all (`limit`); with notes on
// what changes the picture and a one-sentence `summary`.
v1::TupleBudget ComputeTupleBudget(const v1::RunSpec& spec, std::span<const ShardFacts> shards);
// The same with the spec's strings already parsed (`shape`, ShapeOf(spec)).
v1::TupleBudget ComputeTupleBudget(const v1::RunSpec& spec, const RunShape& shape,
                                   std::span<const ShardFacts> shards);

// ---- the planner: no agents, a client host described by its settings ----

enum class HostOs : uint8_t { kLinux, kWindows };

// A client host's defaults: `churnlab budget --preset=NAME`.
struct HostPreset {
  absl::string_view name;  // "linux", "windows", "windows-legacy"
  HostOs os;
  uint32_t port_low;
  uint32_t port_high;
  double time_wait_s;
  absl::string_view what;  // where the numbers come from, for --help
};
std::span<const HostPreset> HostPresets();
// nullptr for an unknown name.
const HostPreset* FindHostPreset(absl::string_view name);

// Windows' TcpTimedWaitDelay registry value takes 30-300 s; MaxUserPort 5000-65534 (ports
// 1025..MaxUserPort on the Windows that have it).
inline constexpr double kMinTcpTimedWaitDelay = 30;
inline constexpr double kMaxTcpTimedWaitDelay = 300;

struct PlanInputs {
  HostOs os = HostOs::kLinux;
  uint32_t sources = 1;       // source IPs
  uint32_t destinations = 1;  // destination ip:ports
  uint32_t port_low = 32768;
  uint32_t port_high = 60999;
  double time_wait_s = kTimeWaitSeconds;
  int tw_reuse = 2;       // Linux's net.ipv4.tcp_tw_reuse (2, loopback only, is its default)
  bool loopback = false;  // the connections are loopback ones
  int timestamps = 1;     // Linux's net.ipv4.tcp_timestamps (0 off; reuse needs them)
  // The server is known to answer with TCP timestamps too (a remote one decides for itself; a
  // loopback one is this kernel): bind mode engine's connect() then takes each TIME_WAIT over.
  bool server_timestamps = false;
  double tw_reuse_delay_s = kTwReuseDelaySeconds;  // net.ipv4.tcp_tw_reuse_delay
  ClosePolicy close = ClosePolicy::kClientFin;
  BindMode bind = BindMode::kNoPort;
  int64_t requests_per_connection = 1;
  double rate = 0;  // new connections/s asked for over all sources; 0 = none
  // Seed 002's question, `--hold`: connections held open at once (0 = not asked), whether both
  // ends share this kernel (2 fds and both ends' kernel memory each), and the host's fs.file-max
  // and memory for them, when known.
  uint64_t hold = 0;
  bool same_host = false;
  std::optional<uint64_t> file_max;
  std::optional<uint64_t> memory_bytes;
};

// Kernel memory of one end of a held TCP connection (socket, inode, dentry, file, epoll item):
// bench/RESULTS.md measured 10,283 B for both ends of a loopback connection (1,000,000 held),
// and user space 161 B per connection in the agent.
inline constexpr double kKernelBytesPerEnd = 10283.0 / 2;
inline constexpr double kUserBytesPerConnection = 161;

// The budget of `in` (one source's, by BudgetOfSource, times the sources), how long `rate`
// lasts, where TIME_WAIT lands, what a client sees when ports run out (on Linux and Windows)
// and the changes that lift the budget most, largest first. `in` must be valid: sources,
// destinations, ports and time_wait_s above 0, requests_per_connection at least 1.
v1::BudgetPlan PlanBudget(const PlanInputs& in);

}  // namespace churnlab::analysis
