// What one churn engine run does (shared by the engine that runs it and the coordinator that
// validates specs against it): where to connect, from which source IPs, at what rate or
// concurrency, for how long, and how each connection is used and closed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/net_address.h"
#include "common/port_set.h"
#include "common/target_names.h"
#include "common/time_wait.h"
#include "common/wire_protocol.h"

namespace churnlab {

enum class BindMode : uint8_t {
  kNone,    // no bind(): the kernel picks the source address and port at connect()
  kNoPort,  // IP_BIND_ADDRESS_NO_PORT + bind(ip, 0): port picked at connect(), four-tuple unique
  kBind,    // bind(ip, 0): the port is reserved for all destinations (the classic mistake)
  // bind(0.0.0.0 or ::, 0) (.NET's IPAddress.Any:0): the port is reserved on every address and
  // for all destinations; the kernel picks the source address at connect().
  kBindAny,
  // The engine picks each connection's port per source IP and destination (PortPlan): bind(ip,
  // port) with SO_REUSEADDR, then connect() has no port to search for.
  kEngine,
};

// Whether the mode binds the source IPs it is given (no-port, bind, engine); none and bind-any
// take none.
bool BindsSourceIp(BindMode mode);
// Whether bind() picks the port, reserving it for every destination (bind, bind-any).
bool BindReservesPort(BindMode mode);

enum class ClosePolicy : uint8_t {
  kClientFin,  // the client closes first and keeps the TIME_WAIT
  kRst,        // SO_LINGER {1, 0}: close() sends RST, nobody keeps a TIME_WAIT
  kServerFin,  // the client asks the server to close, waits for its FIN, then closes
};

absl::string_view BindModeName(BindMode mode);          // "none", "no-port", "bind", "bind-any"
absl::string_view ClosePolicyName(ClosePolicy policy);  // "client-fin", "rst", "server-fin"
absl::StatusOr<BindMode> ParseBindMode(absl::string_view name);
absl::StatusOr<ClosePolicy> ParseClosePolicy(absl::string_view name);

// One stage of an open-model run: the rate goes linearly to `rate` connections/s over
// `duration`, from 0 for the first stage and from the previous stage's rate after that (k6's
// ramping arrival rate). A stage that keeps its predecessor's rate holds it.
struct RateStage {
  absl::Duration duration;
  double rate = 0;
};
inline constexpr int kMaxStages = 100;
// "10s:100" (DURATION:RATE, as --stage takes it) to a stage; INVALID_ARGUMENT naming the text.
absl::StatusOr<RateStage> ParseRateStage(absl::string_view text);
// The stage as ParseRateStage reads it back exactly.
std::string RateStageText(const RateStage& stage);

// The client side of TLS (protocols tls and https).
struct TlsClientParams {
  // Verify the server's certificate chain against these CAs and its name (the target's host
  // name, or its IP address): PEM text (a spec carries it), or a PEM file (churnlab-churn's
  // --target-ca, an engine process's copy). Both empty only with `insecure`.
  std::string ca_pem;
  std::string ca_file;
  // No verification at all: any certificate is taken. Reports say so.
  bool insecure = false;
  // The share of connections, in [0, 1], that offer a session from an earlier connection of the
  // same source IP to the same target (a ticket or an ID, whichever the server gave); the rest
  // make full handshakes. Whether the server resumed is counted, not assumed.
  double resumption = 0;
};

// Bind mode engine: where the engine picks source ports from, and when it takes a port again
// toward the same destination.
struct PortPlan {
  // The range (ip_local_port_range, or a part of it: each engine process and worker thread of a
  // shard picks from a slice of its own).
  uint16_t low = 0;
  uint16_t high = 0;
  // Ports of the range never picked: ip_local_reserved_ports, and those bind() took on the host
  // when the shard started (another program's, or a listener's). Null: none.
  std::shared_ptr<const PortSet> excluded;
  // Ports with a TIME_WAIT toward a target from a source of the shard when it started (an earlier
  // run's): taken toward any destination only time_wait_left past the engine's start. Null: none.
  std::shared_ptr<const PortSet> time_wait;
  // A whole TIME_WAIT and a margin: a TIME_WAIT of a socket without SO_REUSEADDR (bind mode
  // no-port's, another client's) refuses bind() on its address and port until it ends,
  // tcp_tw_reuse or not, and which ones had it the kernel does not say.
  absl::Duration time_wait_left = absl::Seconds(kTimeWaitWithMarginSeconds);
  // A port closed first by this side stays in TIME_WAIT toward its destination: it is taken
  // again toward that destination this long after (TIME_WAIT and a margin), unless the
  // connection had TCP timestamps, whose TIME_WAIT the engine takes over a retransmission
  // timeout after the close (EngineWorker::ReuseOf). Ports closed without a TIME_WAIT here are
  // taken again at once.
  absl::Duration reuse_after = absl::Seconds(kTimeWaitWithMarginSeconds);
};

struct EngineParams {
  // Destinations; connections go round-robin over every (source IP, target) pair.
  std::vector<SocketAddress> targets;
  // Per target, the host name it was resolved from ("" for an IP literal): the TLS server name
  // (SNI), the name its certificate must carry, and the Host header. Empty: all IP literals.
  std::vector<std::string> target_names;
  // Destinations given by name, not resolved yet: ResolveEngineTargets adds their addresses to
  // `targets` where the engine runs. The engine takes none.
  std::vector<NamedTarget> named_targets;
  // How often the agent looks the names up again while the run goes (DNS changes: addresses
  // that appear are loaded from then on, addresses gone take no new connections); zero: once.
  // The engine itself resolves nothing (DestinationUpdate).
  absl::Duration resolve_interval = absl::ZeroDuration();
  // Source IPs to bind; non-empty exactly when BindsSourceIp(bind_mode).
  std::vector<SocketAddress> source_ips;
  BindMode bind_mode = BindMode::kNone;
  PortPlan ports;  // bind mode engine: low..high within 1..65535
  Protocol protocol = Protocol::kCounter;
  ClosePolicy close_policy = ClosePolicy::kClientFin;
  // Open model: new connections per second over all threads. 0 selects the closed model.
  double rate = 0;
  // Closed model: connections kept in flight over all threads. 0 selects the open model.
  int64_t concurrency = 0;
  // How long new connections are started; in-flight ones then get their timeouts to finish.
  absl::Duration duration = absl::Seconds(10);
  // Open model only: the rate grows linearly from 0 over this long.
  absl::Duration ramp_up = absl::ZeroDuration();
  // Open model only: the rate profile, instead of ramp_up. With stages, `rate` is their peak
  // (what caps and the tuple budget are checked against) and `duration` their sum.
  std::vector<RateStage> stages;
  // Request/response exchanges per connection; 0 = connect (and the TLS handshake), then close.
  int64_t requests_per_connection = 1;
  // http and https: what each request carries, and the status every response must have (0 = any;
  // another is a failure of phase status).
  HttpRequestSpec request;
  int expect_status = 0;
  TlsClientParams tls;
  // After its last response a connection stays open this long, then closes by the close policy
  // (client-fin or rst only: under server-fin the server closes after the last response).
  absl::Duration hold = absl::ZeroDuration();
  absl::Duration connect_timeout = absl::Seconds(1);
  // Longest wait for each response, and for the server's FIN under server-fin.
  absl::Duration io_timeout = absl::Seconds(2);
  // Open model: connections in flight at most; a start due beyond it is skipped and counted.
  int64_t max_in_flight = 10000;
  // Upper bound on connections started in the whole run; 0 = bounded by duration only.
  int64_t max_connections = 0;
  int threads = 1;
  // A ceiling on new connections per second in either model (0 = none): the agent's --max-rate.
  // The open model may not ask for more; the closed model's starts are paced to stay under it,
  // however fast the target answers or refuses.
  double max_rate = 0;
  // Starts only under a lease (ShardEngine::ExtendLease), none until the first: an agent's
  // dead-man switch, held by the engine itself. false: the run's own end bounds it alone.
  bool leased = false;
};

// The most destinations one run's table may hold: its IP targets, every address its names had
// at the start (kMaxAddressesPerName each) and those later lookups added. Past it a new address
// is not used (and counted).
inline constexpr size_t kMaxDestinations = 30'000;

// A change of a running engine's destinations, after a name was looked up again: `added` (each
// with its name in `added_names`) join the engine's table at index `first`, which must be the
// table's size (a connection's index into it stays valid), and from then on new connections go
// round-robin over `active`, indices into the table (at least one).
struct DestinationUpdate {
  uint32_t first = 0;
  std::vector<SocketAddress> added;
  std::vector<std::string> added_names;
  std::vector<uint32_t> active;
};

// Whether `update` fits a table of `table` entries whose addresses are of `family`: its `first`
// is `table`, each added address has a name and a port and is of that family, the table stays
// within kMaxDestinations, and `active` is not empty and names entries of the table only.
bool UpdateFits(const DestinationUpdate& update, size_t table, int family);

// Hard limits that keep a mistyped flag from becoming a runaway load.
inline constexpr double kMaxRate = 5'000'000;
inline constexpr int64_t kMaxConcurrency = 1'000'000;
inline constexpr absl::Duration kMaxDuration = absl::Hours(24);
// connect_timeout and io_timeout each; the longest a connection may take with them (DrainBound
// without the hold) is at most kMaxDuration.
inline constexpr absl::Duration kMaxTimeout = absl::Hours(1);
inline constexpr int kMaxThreads = 256;
// resolve_interval, when not zero: at least this (and at most kMaxTimeout); a spec with a name
// that does not say gets the default.
inline constexpr absl::Duration kMinResolveInterval = absl::Seconds(1);
inline constexpr absl::Duration kDefaultResolveInterval = absl::Seconds(30);
inline constexpr int64_t kMaxRequestsPerConnection = 1'000'000;
// The most CA certificates' PEM a spec may carry (Debian's whole bundle is about 220 KiB).
inline constexpr size_t kMaxCaPemBytes = 512 * 1024;

// A rate the engine can pace: finite, above 0, at most kMaxRate (`rate > max` is false for NaN).
inline bool IsValidRate(double rate) { return rate > 0 && rate <= kMaxRate; }

// OK, or INVALID_ARGUMENT naming the offending field and value.
absl::Status ValidateEngineParams(const EngineParams& params);
// Bind mode engine: its PortPlan, read where the engine runs (HostPortPlan) after the shard's
// own checks, is a range within 1-65535 and a reuse delay within 0-1h. Engine::Create checks it.
absl::Status ValidatePortPlan(const EngineParams& params);

// Resolves `named_targets` on this host (ResolveTargets): appends every address of each name to
// `targets`, its name to `target_names` (IP literals get ""), and clears `named_targets`; source
// IPs of another family than the run's are left out (a spec of names alone cannot say its
// family before they resolve). What each name resolved to goes to *resolved. UNAVAILABLE naming
// the name when it cannot be resolved; INVALID_ARGUMENT when no source IP is of the family. The
// caller checks the allow-list against the addresses.
absl::Status ResolveEngineTargets(EngineParams* params, std::vector<Resolution>* resolved);

// The longest a connection started at the end of the run may still take: its handshake (TCP and
// TLS), every exchange, the server's FIN (or, connect-only, a TLS session ticket) and the hold.
// Past the run's end plus this, nothing is left open.
absl::Duration DrainBound(const EngineParams& params);

}  // namespace churnlab
