// churnlab-target: the server under test. Prints its counters and exits 0 on SIGINT/SIGTERM.
#include <signal.h>

#include <cstdio>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/address_file.h"
#include "common/flags.h"
#include "common/net_address.h"
#include "common/signals.h"
#include "host/host_facts.h"
#include "host/observer_session.h"
#include "target/target_server.h"

namespace churnlab {
namespace {

struct Options {
  TargetParams params;
  std::string address_file;
  std::string coordinator;
  SecurityFlags security;
  std::string name = "target-" + HostName();
  absl::Duration stats_interval = absl::ZeroDuration();
};

// Long: a table of the target's flags, one entry each.
FlagSet MakeFlags(Options& o) {
  FlagSet flags(
      "churnlab-target",
      "The server a churn test aims at. Its close behaviour, delays, backlog and accept\n"
      "rate reproduce TIME_WAIT on either side, CLOSE_WAIT leaks and listen overflows.\n"
      "Example: churnlab-target --listen=127.0.0.1:9000 --close=server --delay=10ms..50ms");
  TargetParams& p = o.params;
  p.listen = *ParseIpPortList("127.0.0.1:9000");
  flags.Custom("listen", "IP:PORT,...", "127.0.0.1:9000", "addresses to serve; port 0 picks one",
               [&p](absl::string_view v) {
                 absl::StatusOr<std::vector<SocketAddress>> list = ParseIpPortList(v);
                 if (list.ok()) p.listen = *list;
                 return list.status();
               });
  flags.Custom("protocol", "counter|http", "counter",
               "counter: 4-byte LE int32 in, the incremented global counter out; http: HTTP/1.1",
               [&p](absl::string_view v) {
                 absl::StatusOr<Protocol> x = ParseProtocol(v);
                 if (x.ok()) p.protocol = *x;
                 return x.status();
               });
  flags.Custom("close", "server|client|never", "client",
               "server: close right after each answer; client: wait for the client (HTTP "
               "'Connection: close' honoured); never: not even after the client's FIN",
               [&p](absl::string_view v) {
                 absl::StatusOr<CloseMode> x = ParseCloseMode(v);
                 if (x.ok()) p.close_mode = *x;
                 return x.status();
               });
  flags.Custom("delay", "MIN..MAX", "0", "random response delay, e.g. 10ms..1000ms or 50ms",
               [&p](absl::string_view v) {
                 absl::StatusOr<DelayRange> x = ParseDelayRange(v);
                 if (x.ok()) p.delay = *x;
                 return x.status();
               });
  flags.Custom("backlog", "N", "4096", "listen() backlog per worker socket (capped by somaxconn)",
               [&p](absl::string_view v) {
                 if (!absl::SimpleAtoi(v, &p.backlog) || p.backlog < 1) {
                   return absl::InvalidArgumentError("not a positive integer");
                 }
                 return absl::OkStatus();
               });
  flags.Double("accept-rate", &p.accept_rate,
               "accepts per second over all threads, 0 = unlimited; low values fill the backlog");
  flags.Custom("threads", "N", "2", "worker threads, each with its own SO_REUSEPORT socket",
               [&p](absl::string_view v) {
                 if (!absl::SimpleAtoi(v, &p.threads) || p.threads < 1 || p.threads > 256) {
                   return absl::InvalidArgumentError("not an integer in 1..256");
                 }
                 return absl::OkStatus();
               });
  flags.Int("max-leaked", &p.max_leaked, "--close=never: most connections kept in CLOSE_WAIT");
  flags.String("address-file", &o.address_file,
               "write the bound addresses (comma-separated) here once listening");
  flags.Duration("stats-interval", &o.stats_interval, "print the counters this often (0 = off)");
  flags.String("coordinator", &o.coordinator,
               "HOST:PORT of a coordinator to attach to as an observer: it reports this host's "
               "server side (TIME_WAIT, CLOSE_WAIT, listen overflows) and is never given load");
  flags.String("name", &o.name, "the observer's name at the coordinator");
  AddSecurityFlags(flags, &o.security, /*server=*/false);
  return flags;
}

std::string FormatCounters(const TargetCounters& c) {
  return absl::StrCat(
      "accepted=", c.accepted, " answered=", c.answered, " closed_by_peer=", c.closed_by_peer,
      " closed_by_server=", c.closed_by_server, " reset=", c.reset, " errors=", c.errors,
      " leaked=", c.leaked, " leak_cap_closes=", c.leak_cap_closes);
}

// The target as an observer of its own host, reporting to the coordinator; null without one.
std::unique_ptr<ObserverSession> MakeObserver(const Options& o, LinkSecurity security,
                                              const std::vector<SocketAddress>& addresses) {
  if (o.coordinator.empty()) return nullptr;
  CoordinatorSession::Options link;
  link.program = "churnlab-target";
  link.coordinator = o.coordinator;
  link.security = std::move(security);
  link.hello.set_name(o.name);
  link.hello.set_host(HostName());
  return std::make_unique<ObserverSession>(std::move(link), addresses);
}

// Waits for SIGINT/SIGTERM, printing the counters every --stats-interval meanwhile.
void WaitForSignal(const sigset_t& signals, const Options& o, TargetServer& server) {
  while (true) {
    int sig;
    if (o.stats_interval > absl::ZeroDuration()) {
      timespec wait = absl::ToTimespec(o.stats_interval);
      sig = sigtimedwait(&signals, nullptr, &wait);
      if (sig < 0) {
        std::printf("churnlab-target: %s\n", FormatCounters(server.Counters()).c_str());
        std::fflush(stdout);
        continue;
      }
    } else if (sigwait(&signals, &sig) != 0) {
      continue;
    }
    return;
  }
}

int Main(int argc, char** argv) {
  Options o;
  FlagSet flags = MakeFlags(o);
  flags.ParseFlagsOnlyOrExit(argc, argv);
  absl::StatusOr<LinkSecurity> security = LoadLinkSecurity(o.security);
  ExitIfBadInput("churnlab-target", security.status());
  // Signals are taken by sigwait below, never by a worker thread.
  sigset_t signals = BlockTerminationSignals();

  absl::StatusOr<std::unique_ptr<TargetServer>> server = TargetServer::Create(o.params);
  if (!server.ok()) {
    std::fprintf(stderr, "churnlab-target: %s\n", std::string(server.status().message()).c_str());
    return absl::IsInvalidArgument(server.status()) ? kExitBadInput : kExitCannotRun;
  }
  (*server)->Start();
  std::vector<std::string> listening;
  for (const SocketAddress& a : (*server)->addresses()) listening.push_back(a.ToString());
  std::printf("churnlab-target: serving %s on %s, close=%s, %d threads\n",
              std::string(ProtocolName(o.params.protocol)).c_str(),
              absl::StrJoin(listening, ",").c_str(),
              std::string(CloseModeName(o.params.close_mode)).c_str(), o.params.threads);
  std::fflush(stdout);
  if (!o.address_file.empty()) {
    if (absl::Status s = WriteAddressFile(o.address_file, absl::StrJoin(listening, ",")); !s.ok()) {
      std::fprintf(stderr, "churnlab-target: %s\n", std::string(s.message()).c_str());
      return kExitCannotRun;
    }
  }
  std::unique_ptr<ObserverSession> observer =
      MakeObserver(o, *std::move(security), (*server)->addresses());
  std::thread observer_thread;
  if (observer != nullptr) observer_thread = std::thread([&] { observer->Run(); });
  WaitForSignal(signals, o, **server);
  if (observer != nullptr) {
    observer->Shutdown();
    observer_thread.join();
  }
  (*server)->Stop();
  std::printf("churnlab-target: %s\n", FormatCounters((*server)->Counters()).c_str());
  return kExitOk;
}

}  // namespace
}  // namespace churnlab

int main(int argc, char** argv) { return churnlab::Main(argc, argv); }
