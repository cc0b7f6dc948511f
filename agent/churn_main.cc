// churnlab-churn: runs the churn engine on this host against a target, printing one progress line
// a second and a summary. The agent runs the same engine under a coordinator's orders.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/destinations.h"
#include "agent/engine.h"
#include "agent/engine_pipe.h"
#include "agent/engine_processes.h"
#include "agent/local_report.h"
#include "agent/port_plan.h"
#include "agent/run_summary.h"
#include "common/flags.h"
#include "common/load_priority.h"
#include "common/status_macros.h"
#include "host/host_facts.h"
#include "proto/engine_codec.h"
#include "proto/report_export.h"

namespace churnlab {
namespace {

std::atomic<bool> interrupted{false};

void OnSignal(int) { interrupted.store(true); }

struct Options {
  EngineParams params;
  std::string bind = "auto";
  std::string allow_targets{kLoopbackCidrs};
  bool progress = true;
  bool json = false;
  bool child = false;
  std::vector<Resolution> resolved;  // target names and their addresses
  std::vector<NamedTarget> names;    // the targets given by name, looked up again while it runs
  AllowList allowed;
};

// What http and https requests carry, and TLS's client side.
void AddRequestFlags(FlagSet& flags, Options& o) {
  EngineParams& p = o.params;
  flags.String("method", &p.request.method, "http/https: the request method");
  flags.String("path", &p.request.path, "http/https: the request path and query");
  flags.Custom("header", "'NAME: VALUE'", "", "http/https, repeatable: a request header",
               [&p](absl::string_view v) {
                 RETURN_IF_ERROR(CheckHeaderLine(v));
                 p.request.headers.emplace_back(v);
                 return absl::OkStatus();
               });
  flags.Custom(
      "body-file", "FILE", "", "http/https: the request body, from a file",
      [&p](absl::string_view v) { return ReadFlagFile(v, kMaxRequestBodyBytes, &p.request.body); });
  flags.Custom("expect-status", "CODE", "0",
               "http/https: a response with another status fails (phase status); 0 = any",
               InRange<int>(&p.expect_status, 0, 599));
  flags.String("target-ca", &p.tls.ca_file, "tls/https: verify the server against these CAs");
  flags.Bool("insecure", &p.tls.insecure, "tls/https: take any certificate, unverified");
  flags.Custom("tls-resumption", "FRACTION", "0",
               "tls/https: share of connections that resume a session of an earlier one from "
               "the same source IP to the same target",
               [&p](absl::string_view v) {
                 if (ParseFiniteDouble(v, &p.tls.resumption) && p.tls.resumption >= 0 &&
                     p.tls.resumption <= 1) {
                   return absl::OkStatus();
                 }
                 return absl::InvalidArgumentError("not a fraction in [0, 1]");
               });
}

// Long: a table of the engine's flags, one entry each.
FlagSet MakeFlags(Options& o) {
  FlagSet flags(
      "churnlab-churn",
      "Opens, uses and closes TCP connections against --target at a rate (open model) or\n"
      "a concurrency (closed model) for a bounded time, from chosen source IPs, and\n"
      "reports every outcome by source IP, phase and errno.\n"
      "Example: churnlab-churn --target=127.0.0.1:9000 --rate=1000 --duration=10s");
  EngineParams& p = o.params;
  flags.Custom("target", "IP:PORT|HOST:PORT,...", "",
               "destinations (required); a host name is resolved here and each of its addresses "
               "(of the run's family) is a destination",
               [&p](absl::string_view v) {
                 p.targets.clear();
                 p.named_targets.clear();
                 for (absl::string_view item : absl::StrSplit(v, ',')) {
                   absl::StatusOr<SocketAddress> ip = SocketAddress::ParseIpPort(item);
                   if (ip.ok()) {
                     p.targets.push_back(*ip);
                     continue;
                   }
                   ASSIGN_OR_RETURN(NamedTarget named, ParseNamedTarget(item));
                   p.named_targets.push_back(named);
                 }
                 return absl::OkStatus();
               });
  flags.Custom("source-ips", "IP,...", "", "source IPs to spread connections over",
               [&p](absl::string_view v) {
                 absl::StatusOr<std::vector<SocketAddress>> list = ParseIpList(v);
                 if (list.ok()) p.source_ips = *list;
                 return list.status();
               });
  flags.String("bind", &o.bind,
               "none | no-port | bind | bind-any (bind(0.0.0.0, 0), like IPAddress.Any:0) | engine "
               "(the engine picks each source port: connect() searches nothing); auto = no-port "
               "with --source-ips, else none");
  flags.Custom("protocol", "counter|http|tls|https", "counter",
               "request/response protocol; tls and https run inside TLS",
               [&p](absl::string_view v) {
                 absl::StatusOr<Protocol> x = ParseProtocol(v);
                 if (x.ok()) p.protocol = *x;
                 return x.status();
               });
  flags.Custom("close", "POLICY", "client-fin", "client-fin | rst | server-fin",
               [&p](absl::string_view v) {
                 absl::StatusOr<ClosePolicy> x = ParseClosePolicy(v);
                 if (x.ok()) p.close_policy = *x;
                 return x.status();
               });
  flags.Double("rate", &p.rate, "open model: new connections per second");
  flags.Int("concurrency", &p.concurrency, "closed model: connections kept in flight");
  flags.Duration("duration", &p.duration, "how long new connections are started");
  flags.Duration("ramp-up", &p.ramp_up, "open model: linear ramp of the rate from 0");
  flags.Custom("stage", "DURATION:RATE", "",
               "open model, repeatable: the rate goes linearly to RATE over DURATION (from 0 for "
               "the first); --rate is then their peak and --duration their sum",
               [&p](absl::string_view v) {
                 absl::StatusOr<RateStage> stage = ParseRateStage(v);
                 if (!stage.ok()) return stage.status();
                 p.stages.push_back(*stage);
                 return absl::OkStatus();
               });
  flags.Int("requests-per-connection", &p.requests_per_connection,
            "request/response exchanges per connection (>1 = keep-alive; 0 = connect, and the "
            "TLS handshake, then close)");
  AddRequestFlags(flags, o);
  flags.Duration("connect-timeout", &p.connect_timeout, "longest wait for the handshake");
  flags.Duration("io-timeout", &p.io_timeout, "longest wait for a response or the server's FIN");
  flags.Duration("hold", &p.hold, "keep each connection open this long after its requests");
  p.resolve_interval = kDefaultResolveInterval;
  flags.Duration("resolve-interval", &p.resolve_interval,
                 "targets by name: look them up again this often while it runs (0s: once)");
  flags.Int("max-in-flight", &p.max_in_flight, "open model: cap on open connections");
  flags.Int("max-connections", &p.max_connections, "cap on connections started (0 = none)");
  flags.Custom("threads", "N", "1", "engine threads", [&p](absl::string_view v) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(v, &n) || n < 1 || n > kMaxThreads) {
      return absl::InvalidArgumentError(absl::StrCat("not an integer in 1..", kMaxThreads));
    }
    p.threads = static_cast<int>(n);
    return absl::OkStatus();
  });
  flags.String("allow-targets", &o.allow_targets,
               "address blocks (CIDRs) and host names the targets must be inside (a name: the "
               "addresses it resolves to)");
  flags.Bool("progress", &o.progress, "print a progress line every second");
  flags.Bool("json", &o.json,
             "print the summary as the report's JSON (churnlab report --format=json's shape), "
             "and progress lines on standard error");
  flags.Double("max-rate", &p.max_rate, "never more new connections/s than this (0 = none)");
  flags.Bool("child", &o.child,
             "run as one engine process of an agent: its part of the shard, then orders, on "
             "stdin; answers on stdout (protobuf, length-delimited); no other flag with it");
  return flags;
}

absl::Status Resolve(Options& o) {
  EngineParams& p = o.params;
  if (o.bind == "auto") {
    p.bind_mode = p.source_ips.empty() ? BindMode::kNone : BindMode::kNoPort;
  } else {
    absl::StatusOr<BindMode> mode = ParseBindMode(o.bind);
    if (!mode.ok())
      return absl::InvalidArgumentError(absl::StrCat("--bind: ", mode.status().message()));
    p.bind_mode = *mode;
  }
  absl::StatusOr<AllowList> allowed = ParseAllowList(o.allow_targets);
  if (!allowed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--allow-targets: ", allowed.status().message()));
  }
  o.allowed = *allowed;
  o.names = p.named_targets;
  RETURN_IF_ERROR(ResolveEngineTargets(&p, &o.resolved));
  if (p.bind_mode == BindMode::kEngine) {
    auto [low, high] = LocalPortRange();
    ASSIGN_OR_RETURN(p.ports, HostPortPlan(p, TakeRangeUse(low, high)));
  }
  for (const Resolution& r : o.resolved) {
    std::vector<std::string> addresses;
    for (const SocketAddress& a : r.addresses) addresses.push_back(a.IpString());
    std::fprintf(stderr, "churnlab-churn: %s resolved to %s%s\n", r.target.host.c_str(),
                 absl::StrJoin(addresses, ", ").c_str(),
                 r.found > r.addresses.size()
                     ? absl::StrCat(" (", r.found - r.addresses.size(),
                                    " more of another family or past 16, not used)")
                           .c_str()
                     : "");
  }
  return CheckTargetsAllowed(p.targets, *allowed);
}

// Looks the targets given by name up again every --resolve-interval (null: none, or once).
std::unique_ptr<NameWatch> WatchNames(const Options& o) {
  if (o.names.empty() || o.params.resolve_interval <= absl::ZeroDuration()) return nullptr;
  return std::make_unique<NameWatch>(
      DestinationTable(o.params.targets, o.params.target_names), o.names, o.params.resolve_interval,
      [&o](const SocketAddress& a) { return CheckTargetsAllowed({a}, o.allowed).ok(); },
      [](const std::string& note) { std::fprintf(stderr, "churnlab-churn: %s\n", note.c_str()); });
}

// Gives the engine what a lookup changed; the report lists every address used.
void TakeLookups(NameWatch& watch, Engine& engine, Options& o) {
  std::optional<NameWatch::Found> found = watch.Take();
  if (!found.has_value() || !engine.UpdateDestinations(found->update)) return;
  o.resolved = UsedByName(found->targets, found->names);
  std::fprintf(stderr, "churnlab-churn: a lookup changed the destinations: %zu in use now\n",
               found->update.active.size());
}

// Writes one answer to stdout; false when the pipe broke (the agent is gone).
bool Answer(v1::EngineAnswer::Status status, const std::string& error,
            const EngineSnapshot* snapshot = nullptr) {
  v1::EngineAnswer answer;
  answer.set_status(status);
  answer.set_error(error);
  if (snapshot != nullptr) *answer.mutable_snapshot() = SnapshotToProto(*snapshot);
  return WriteAll(STDOUT_FILENO, DelimitedFrame(answer));
}

// The part of the shard on stdin, as an engine.
absl::StatusOr<std::unique_ptr<Engine>> ReadPart() {
  v1::EngineParams part;
  if (!ReadDelimited(STDIN_FILENO, kMaxEngineParamsBytes, &part)) {
    return absl::InvalidArgumentError("no part of a shard (EngineParams) on stdin");
  }
  ASSIGN_OR_RETURN(EngineParams params, EngineParamsFromProto(part));
  return Engine::Create(params);
}

// One engine process of an agent's shard (agent/engine_processes.h): reads its part, validates
// it, says so in its first answer, then follows orders from stdin until it closes (the agent is
// done or gone).
int RunChild() {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  YieldToControlPlane();
  absl::StatusOr<std::unique_ptr<Engine>> engine = ReadPart();
  if (!engine.ok()) {
    Answer(v1::EngineAnswer::STATUS_ERROR, std::string(engine.status().message()));
    return kExitBadInput;
  }
  if (!Answer(v1::EngineAnswer::STATUS_RUNNING, "")) return kExitCannotRun;
  v1::EngineOrder order;
  DestinationOrderReader destinations((*engine)->params().targets.size());
  while (ReadDelimited(STDIN_FILENO, kMaxEngineOrderBytes, &order)) {
    switch (order.order_case()) {
      case v1::EngineOrder::kAddDestination:
        destinations.Add(order.add_destination());
        break;
      case v1::EngineOrder::kActiveDestinations:
        if (std::optional<DestinationUpdate> update =
                destinations.Active(order.active_destinations());
            update.has_value() && !(*engine)->UpdateDestinations(*update)) {
          destinations.OutOfStep();
        }
        break;
      case v1::EngineOrder::kLeaseUntilNanos:
        (*engine)->ExtendLease(order.lease_until_nanos());
        break;
      case v1::EngineOrder::kStart:
        (*engine)->Start();
        break;
      case v1::EngineOrder::kStop:
        (*engine)->Stop();
        break;
      case v1::EngineOrder::kPoll: {
        // Done first: a snapshot taken after it is the final one.
        bool done = (*engine)->Done();
        EngineSnapshot snapshot = (*engine)->Snapshot();
        if (!Answer(done ? v1::EngineAnswer::STATUS_DONE : v1::EngineAnswer::STATUS_RUNNING, "",
                    &snapshot)) {
          (*engine)->Stop();
          return kExitOk;
        }
        break;
      }
      default:
        break;  // an order this build does not know
    }
  }
  (*engine)->Stop();
  return kExitOk;
}

int Main(int argc, char** argv) {
  Options o;
  FlagSet flags = MakeFlags(o);
  flags.ParseFlagsOnlyOrExit(argc, argv);
  if (o.child) {
    // Its part of the shard comes on stdin, whole: a flag beside --child would be ignored.
    if (argc != 2) {
      std::fprintf(stderr,
                   "churnlab-churn: --child takes no other flag (its part comes on stdin)\n");
      return kExitBadInput;
    }
    return RunChild();
  }
  ExitIfBadInput("churnlab-churn", Resolve(o));
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(o.params);
  if (!engine.ok()) {
    bool bad_input =
        absl::IsInvalidArgument(engine.status()) || absl::IsFailedPrecondition(engine.status());
    std::fprintf(stderr, "churnlab-churn: %s\n", std::string(engine.status().message()).c_str());
    return bad_input ? kExitBadInput : kExitCannotRun;
  }
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  std::unique_ptr<NameWatch> watch = WatchNames(o);
  (*engine)->Start();
  EngineSnapshot previous = (*engine)->Snapshot();
  auto next = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!(*engine)->Done()) {
    if (interrupted.load()) (*engine)->Stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (std::chrono::steady_clock::now() < next) continue;
    next += std::chrono::seconds(1);
    if (watch != nullptr) TakeLookups(*watch, **engine, o);
    EngineSnapshot now = (*engine)->Snapshot();
    if (o.progress) {
      std::fprintf(o.json ? stderr : stdout, "%s\n",
                   FormatProgress(o.params, now, now.Since(previous)).c_str());
    }
    std::fflush(stdout);
    previous = std::move(now);
  }
  EngineSnapshot final_snapshot = (*engine)->Wait();
  watch.reset();
  if (o.json) {
    std::printf("%s\n", ReportToJson(LocalReport(o.params, final_snapshot, o.resolved)).c_str());
  } else {
    std::printf("%s", FormatSummary(o.params, final_snapshot).c_str());
  }
  return interrupted.load() ? kExitFailed : kExitOk;
}

}  // namespace
}  // namespace churnlab

int main(int argc, char** argv) { return churnlab::Main(argc, argv); }
