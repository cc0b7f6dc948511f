// churnlab-agent: attaches to a coordinator and runs the churn engine on the shards it is given.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/agent_session.h"
#include "agent/agent_sources.h"
#include "common/engine_params.h"
#include "common/fd_limit.h"
#include "common/flags.h"
#include "common/signals.h"
#include "common/status_macros.h"
#include "host/host_facts.h"
#include "proto/grpc_link.h"
#include "proto/hello.h"

namespace churnlab {
namespace {

struct Options {
  std::string coordinator = "127.0.0.1:7400";
  std::string name = HostName();
  SourceFlags sources;
  std::string allow_targets{kLoopbackCidrs};
  double max_rate = 0;
  int64_t max_in_flight = 0;
  int64_t threads = UsableCores();
  absl::Duration exit_when_idle = absl::ZeroDuration();
  SecurityFlags security;
};

FlagSet MakeFlags(Options& o) {
  FlagSet flags("churnlab-agent",
                "Attaches to a churnlab coordinator and runs its share of each run from its own\n"
                "source IPs. Sends traffic only inside --allow-targets and below --max-rate.\n"
                "Example: churnlab-agent --coordinator=10.0.0.5:7400 --name=a1 "
                "--source-ips=10.0.1.10,10.0.1.11");
  flags.String("coordinator", &o.coordinator, "HOST:PORT of the coordinator's gRPC port");
  flags.String("name", &o.name, "this agent's name, unique among the coordinator's agents");
  flags.String("source-ips", &o.sources.source_ips,
               "IPs this agent may bind (default: this host's own addresses)");
  flags.String("source-cidrs", &o.sources.source_cidrs,
               "instead of --source-ips: this host's addresses inside these CIDRs (a pod's "
               "extra interfaces, a hostNetwork pod's node addresses)");
  flags.String("source-prefix", &o.sources.source_prefix,
               "instead of --source-ips: --source-count addresses of this prefix, routed to this "
               "host but on no interface (`ip -6 route add local 2001:db8:7::/64 dev lo`); "
               "IPv6 ones are bound with IPV6_FREEBIND");
  flags.String("source-prefix-within", &o.sources.source_prefix_within,
               "instead of --source-prefix: the one IPv6 prefix inside this block that this host "
               "routes local (each node of a cluster its own)");
  flags.Int("source-count", &o.sources.source_count,
            "how many addresses of the prefix to use, from its first: 1..4096");
  flags.String("allow-targets", &o.allow_targets,
               "address blocks (CIDRs) and host names this agent will send traffic to; a name "
               "allows the addresses it resolves to when a shard comes; shards aimed elsewhere "
               "are refused");
  flags.Double("max-rate", &o.max_rate,
               "never more new connections/s than this, in any model: open-model shards above "
               "it are refused, closed-model starts are paced under it (0 = none)");
  flags.Int("max-in-flight", &o.max_in_flight,
            "refuse shards that would hold more connections at once (0 = none)");
  flags.Int("threads", &o.threads,
            "engine threads per shard; the default is the cores it may run on");
  flags.Duration("exit-when-idle", &o.exit_when_idle,
                 "exit 0 once idle this long after running at least one shard (a Kubernetes "
                 "Job's agents); 0 = serve until a signal");
  AddSecurityFlags(flags, &o.security, /*server=*/false);
  return flags;
}

absl::StatusOr<AgentSession::Options> Resolve(const Options& o) {
  AgentSession::Options out;
  RETURN_IF_ERROR(CheckCoordinatorAddress("coordinator", o.coordinator));
  out.link.coordinator = o.coordinator;
  absl::StatusOr<LinkSecurity> security = LoadLinkSecurity(o.security);
  if (!security.ok()) return security.status();
  out.link.security = *std::move(security);
  if (o.exit_when_idle < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--exit-when-idle=", absl::FormatDuration(o.exit_when_idle), ": must be >= 0"));
  }
  out.exit_when_idle = o.exit_when_idle;
  if (o.name.empty() || o.name.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat("--name='", o.name, "': 1..128 characters"));
  }
  absl::StatusOr<AllowList> allowed = ParseAllowList(o.allow_targets);
  if (!allowed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--allow-targets: ", allowed.status().message()));
  }
  out.allow_targets = *allowed;
  absl::StatusOr<std::vector<SocketAddress>> sources = ResolveSources(o.sources);
  if (!sources.ok()) return sources.status();
  for (const SocketAddress& ip : *sources) out.link.hello.add_source_ips(ip.IpString());
  if (o.max_rate < 0 || o.max_rate > kMaxRate) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-rate=", o.max_rate, ": not in 0..", kMaxRate));
  }
  if (o.max_in_flight < 0 || o.max_in_flight > kMaxAgentInFlight) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-in-flight=", o.max_in_flight, ": not in 0..", kMaxAgentInFlight));
  }
  if (o.threads < 1 || o.threads > kMaxThreads) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads=", o.threads, ": not in 1..", kMaxThreads));
  }
  out.max_rate = o.max_rate;
  out.max_in_flight = o.max_in_flight;
  out.link.hello.set_max_rate(o.max_rate);
  out.link.hello.set_max_in_flight(o.max_in_flight);
  out.threads = static_cast<int>(o.threads);
  out.link.hello.set_name(o.name);
  out.link.hello.set_host(HostName());
  for (const std::string& entry : allowed->Entries()) out.link.hello.add_allow_targets(entry);
  FillHostSettings(&out.link.hello);
  out.link.hello.set_version("0.1.0");
  out.link.refresh_settings = FillHostSettings;
  return out;
}

int Main(int argc, char** argv) {
  Options o;
  FlagSet flags = MakeFlags(o);
  flags.ParseFlagsOnlyOrExit(argc, argv);
  // Each connection in flight is an fd; the hello reports the limit as it is after this.
  std::fprintf(stderr, "churnlab-agent: %s\n", RaiseFdLimit().Describe().c_str());
  absl::StatusOr<AgentSession::Options> options = Resolve(o);
  if (!options.ok()) ExitIfBadInput("churnlab-agent", options.status());
  sigset_t signals = BlockTerminationSignals();
  // A write to an engine process that has gone must be an error, not the agent's death.
  signal(SIGPIPE, SIG_IGN);
  std::fprintf(stderr, "churnlab-agent: %s, source IPs %s, allowed targets %s\n",
               options->link.hello.name().c_str(),
               absl::StrJoin(options->link.hello.source_ips(), ",").c_str(),
               absl::StrJoin(options->link.hello.allow_targets(), ",").c_str());
  AgentSession session(*std::move(options));
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    session.Shutdown();
  });
  session.Run();
  // Run() returns after Shutdown(): from the signal thread, or after --exit-when-idle, when
  // the signal thread still waits and is woken the same way.
  kill(getpid(), SIGTERM);
  waiter.join();
  return kExitOk;
}

}  // namespace
}  // namespace churnlab

int main(int argc, char** argv) { return churnlab::Main(argc, argv); }
