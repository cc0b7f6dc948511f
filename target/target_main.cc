// churnlab-target: the server under test. Prints its counters and exits 0 on SIGINT/SIGTERM.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/address_file.h"
#include "common/child_processes.h"
#include "common/fd_limit.h"
#include "common/flags.h"
#include "common/load_priority.h"
#include "common/net_address.h"
#include "common/signals.h"
#include "common/status_macros.h"
#include "host/host_facts.h"
#include "host/observer_session.h"
#include "proto/grpc_link.h"
#include "target/shared_counters.h"
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
  int64_t processes = 1;
  int64_t connections = 0;
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
  flags.Custom("protocol", "counter|http|tls|https", "counter",
               "counter: 4-byte LE int32 in, the incremented global counter out; http: HTTP/1.1; "
               "tls and https: the same inside TLS",
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
  flags.String("tls-cert", &p.tls_cert,
               "tls/https: the certificate (chain), PEM; without it and --tls-key a self-signed "
               "ECDSA one is made for localhost and the listen addresses, and its path printed");
  flags.String("tls-key", &p.tls_key, "tls/https: the certificate's private key, PEM");
  flags.Double("accept-rate", &p.accept_rate,
               "accepts per second over all threads, 0 = unlimited; low values fill the backlog");
  flags.Custom("threads", "N", "2", "worker threads, each with its own SO_REUSEPORT socket",
               [&p](absl::string_view v) {
                 if (!absl::SimpleAtoi(v, &p.threads) || p.threads < 1 || p.threads > 256) {
                   return absl::InvalidArgumentError("not an integer in 1..256");
                 }
                 return absl::OkStatus();
               });
  flags.Int("processes", &o.processes,
            "server processes sharing the listening ports (SO_REUSEPORT), each with its own fd "
            "limit");
  flags.Int("connections", &o.connections,
            "connections to hold at once: starts as many processes as the fd limit needs "
            "(overrides --processes; 0 = off)");
  flags.Int("max-leaked", &p.max_leaked, "--close=never: most connections kept in CLOSE_WAIT");
  flags.String("address-file", &o.address_file,
               "write the bound addresses (comma-separated) here once listening");
  flags.Duration("stats-interval", &o.stats_interval, "print the counters this often (0 = off)");
  flags.String("coordinator", &o.coordinator,
               "HOST:PORT of a coordinator to attach to as an observer: it reports this host's "
               "server side (TIME_WAIT, CLOSE_WAIT, listen overflows) and is never given load");
  flags.String("name", &o.name, "the observer's name at the coordinator");
  AddSecurityFlags(flags, &o.security, /*server=*/false, "coordinator-");
  return flags;
}

std::string FormatCounters(const TargetCounters& c) {
  return absl::StrCat(
      "accepted=", c.accepted, " answered=", c.answered, " closed_by_peer=", c.closed_by_peer,
      " closed_by_server=", c.closed_by_server, " reset=", c.reset, " errors=", c.errors,
      " leaked=", c.leaked, " leak_cap_closes=", c.leak_cap_closes, " tls_full=", c.tls_full,
      " tls_resumed=", c.tls_resumed, " tls_failed=", c.tls_failed);
}

// Protocols tls and https without --tls-cert/--tls-key: a self-signed certificate, made now and
// removed at exit; its path is printed for clients' --target-ca. Empty when not needed.
absl::StatusOr<std::string> GenerateCertificateIfNeeded(TargetParams& p) {
  if (!UsesTls(p.protocol) || !p.tls_cert.empty() || !p.tls_key.empty()) return "";
  ASSIGN_OR_RETURN(GeneratedCertificate made, WriteSelfSignedCertificate(p.listen));
  p.tls_cert = made.cert_file;
  p.tls_key = made.key_file;
  std::printf(
      "churnlab-target: TLS certificate (self-signed, ECDSA P-256, localhost and the listen "
      "addresses): %s (clients: --target-ca=%s)\n",
      made.cert_file.c_str(), made.cert_file.c_str());
  std::fflush(stdout);
  return made.dir;
}

// The made certificate's directory ("" for none), removed when the target exits.
class CertificateDir {
 public:
  explicit CertificateDir(std::string dir) : dir_(std::move(dir)) {}
  ~CertificateDir() {
    if (dir_.empty()) return;
    for (const char* file : {"/cert.pem", "/key.pem"}) unlink((dir_ + file).c_str());
    rmdir(dir_.c_str());
  }
  CertificateDir(const CertificateDir&) = delete;
  CertificateDir& operator=(const CertificateDir&) = delete;

 private:
  std::string dir_;
};

// The target as an observer of its own host, reporting to the coordinator; null without one.
std::unique_ptr<ObserverSession> MakeObserver(const Options& o, LinkSecurity security,
                                              const TargetServer& server,
                                              const SharedCounters& processes) {
  if (o.coordinator.empty()) return nullptr;
  CoordinatorSession::Options link;
  link.program = "churnlab-target";
  link.coordinator = o.coordinator;
  link.security = std::move(security);
  link.hello.set_name(o.name);
  link.hello.set_host(HostName());
  // Its counts go with every message, so a run's report sets them beside the clients'.
  auto counts = [&server, &processes] {
    TargetCounters c = processes.Sum(server.Counters());
    v1::ServerCounts out;
    out.set_accepted(c.accepted);
    out.set_answered(c.answered);
    out.set_tls_full(c.tls_full);
    out.set_tls_resumed(c.tls_resumed);
    out.set_tls_failed(c.tls_failed);
    return out;
  };
  return std::make_unique<ObserverSession>(std::move(link), server.addresses(), counts);
}

// Waits for SIGINT/SIGTERM, printing the counters every --stats-interval meanwhile.
void WaitForSignal(const sigset_t& signals, const Options& o, TargetServer& server,
                   const SharedCounters& processes) {
  while (true) {
    int sig;
    if (o.stats_interval > absl::ZeroDuration()) {
      timespec wait = absl::ToTimespec(o.stats_interval);
      sig = sigtimedwait(&signals, nullptr, &wait);
      if (sig < 0) {
        std::printf("churnlab-target: %s\n",
                    FormatCounters(processes.Sum(server.Counters())).c_str());
        std::fflush(stdout);
        continue;
      }
    } else if (sigwait(&signals, &sig) != 0) {
      continue;
    }
    return;
  }
}

inline constexpr int64_t kMaxProcesses = 1024;

// Processes needed so that each holds at most its fd limit's worth of `connections`.
int64_t ServerProcesses(const Options& o, uint64_t fd_limit) {
  if (o.connections <= 0) return o.processes;
  return static_cast<int64_t>(ProcessesFor(static_cast<uint64_t>(o.connections), fd_limit));
}

// Serves in a forked child until SIGTERM (also sent when the parent dies), then exits.
[[noreturn]] void ServeInChild(const TargetParams& resolved, int64_t index,
                               SharedCounters* processes) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() == 1) _exit(kExitOk);  // the parent died before prctl took effect
  YieldToControlPlane();               // the parent keeps the observer's beat
  absl::StatusOr<std::unique_ptr<TargetServer>> server = TargetServer::Create(resolved);
  if (!server.ok()) {
    std::fprintf(stderr, "churnlab-target: process %lld: %s\n", static_cast<long long>(index),
                 std::string(server.status().message()).c_str());
    _exit(kExitCannotRun);
  }
  (*server)->Start();
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  // Its counters reach the reporting process every 100 ms, and once more as it stops.
  const timespec beat = {0, 100'000'000};
  while (sigtimedwait(&signals, nullptr, &beat) < 0) {
    processes->Publish(static_cast<size_t>(index), (*server)->Counters());
  }
  (*server)->Stop();
  processes->Publish(static_cast<size_t>(index), (*server)->Counters());
  _exit(kExitOk);
}

// Forks the extra server processes, before any thread starts (fork() copies only the calling
// thread): each listens with SO_REUSEPORT sockets of its own on the ports the parent resolved,
// so the kernel spreads connections over every process and each has its own fd limit.
std::vector<pid_t> ForkServers(int64_t count, const TargetServer& parent, TargetParams params,
                               SharedCounters* processes) {
  params.listen = parent.addresses();
  params.join_own_ports = true;
  std::vector<pid_t> children;
  for (int64_t i = 1; i < count; ++i) {
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) ServeInChild(params, i, processes);
    if (pid < 0) {
      std::perror("churnlab-target: fork");
      break;
    }
    children.push_back(pid);
  }
  return children;
}

// SIGTERM, then SIGKILL for a server process that has not exited 2 s later (stopped or wedged).
void StopServers(const std::vector<pid_t>& children) {
  for (pid_t pid : children) kill(pid, SIGTERM);
  if (int killed = ReapOrKill(children, absl::Seconds(2)); killed > 0) {
    std::fprintf(
        stderr,
        "churnlab-target: %d server process(es) did not exit within 2 s of SIGTERM: killed\n",
        killed);
  }
}

// Says what is served where; the listening addresses as text.
std::vector<std::string> Serving(const Options& o, const TargetServer& server, size_t processes) {
  std::vector<std::string> listening;
  for (const SocketAddress& a : server.addresses()) listening.push_back(a.ToString());
  std::printf("churnlab-target: serving %s on %s, close=%s, %d threads x %zu processes\n",
              std::string(ProtocolName(o.params.protocol)).c_str(),
              absl::StrJoin(listening, ",").c_str(),
              std::string(CloseModeName(o.params.close_mode)).c_str(), o.params.threads, processes);
  std::fflush(stdout);
  return listening;
}

// The flags the target's server does not check itself, or exit 2 naming the bad one; the link
// security to attach with.
LinkSecurity CheckFlagsOrExit(const Options& o) {
  absl::StatusOr<LinkSecurity> security = LoadLinkSecurity(o.security);
  ExitIfBadInput("churnlab-target", security.status());
  if (!o.coordinator.empty()) {
    ExitIfBadInput("churnlab-target", CheckCoordinatorAddress("coordinator", o.coordinator));
  }
  if (o.processes < 1 || o.processes > kMaxProcesses) {
    ExitIfBadInput("churnlab-target",
                   absl::InvalidArgumentError(
                       absl::StrCat("--processes=", o.processes, ": not in 1..", kMaxProcesses)));
  }
  return *std::move(security);
}

int Main(int argc, char** argv) {
  Options o;
  FlagSet flags = MakeFlags(o);
  flags.ParseFlagsOnlyOrExit(argc, argv);
  LinkSecurity security = CheckFlagsOrExit(o);
  // Each accepted connection is an fd.
  FdLimitChange fds = RaiseFdLimit();
  std::fprintf(stderr, "churnlab-target: %s\n", fds.Describe().c_str());
  // Signals are taken by sigwait below, never by a worker thread.
  sigset_t signals = BlockTerminationSignals();

  absl::StatusOr<std::string> generated = GenerateCertificateIfNeeded(o.params);
  if (!generated.ok()) {
    std::fprintf(stderr, "churnlab-target: cannot make a TLS certificate: %s\n",
                 std::string(generated.status().message()).c_str());
    return kExitCannotRun;
  }
  CertificateDir certificate(*generated);
  absl::StatusOr<std::unique_ptr<TargetServer>> server = TargetServer::Create(o.params);
  if (!server.ok()) {
    std::fprintf(stderr, "churnlab-target: %s\n", std::string(server.status().message()).c_str());
    return absl::IsInvalidArgument(server.status()) ? kExitBadInput : kExitCannotRun;
  }
  int64_t processes = std::min(ServerProcesses(o, fds.soft), kMaxProcesses);
  absl::StatusOr<std::unique_ptr<SharedCounters>> counters =
      SharedCounters::Create(static_cast<size_t>(processes));
  if (!counters.ok()) {
    std::fprintf(stderr, "churnlab-target: %s\n", std::string(counters.status().message()).c_str());
    return kExitCannotRun;
  }
  std::vector<pid_t> children = ForkServers(processes, **server, o.params, counters->get());
  (*server)->Start();
  std::vector<std::string> listening = Serving(o, **server, children.size() + 1);
  if (!o.address_file.empty()) {
    if (absl::Status s = WriteAddressFile(o.address_file, absl::StrJoin(listening, ",")); !s.ok()) {
      std::fprintf(stderr, "churnlab-target: %s\n", std::string(s.message()).c_str());
      StopServers(children);
      return kExitCannotRun;
    }
  }
  std::unique_ptr<ObserverSession> observer =
      MakeObserver(o, std::move(security), **server, **counters);
  std::thread observer_thread;
  if (observer != nullptr) observer_thread = std::thread([&] { observer->Run(); });
  WaitForSignal(signals, o, **server, **counters);
  if (observer != nullptr) {
    observer->Shutdown();
    observer_thread.join();
  }
  StopServers(children);  // each publishes its last counters as it stops
  (*server)->Stop();
  std::printf("churnlab-target: %s (all %zu processes)\n",
              FormatCounters((*counters)->Sum((*server)->Counters())).c_str(), children.size() + 1);
  return kExitOk;
}

}  // namespace
}  // namespace churnlab

int main(int argc, char** argv) { return churnlab::Main(argc, argv); }
