#include "analysis/observations.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/connect_observations.h"
#include "analysis/nat_observations.h"
#include "analysis/tuple_budget.h"
#include "common/windows_errors.h"
#include "proto/tcp_state_counts.h"

namespace churnlab::analysis {
namespace {

// A loop lag below this is scheduling noise, not worth a sentence.
constexpr double kLoopLagWorthSayingMs = 10;

// " (on Windows: 10048 WSAEADDRINUSE, "Only one usage ...")", the words a Windows user searched.
std::string OnWindows(const char* key) {
  const WindowsError* w = WindowsErrorFor(key);
  if (w == nullptr) return "";
  return absl::StrFormat(" (on Windows: %d %s, \"%s\")", w->code, w->name, w->message);
}

uint64_t CountOf(const google::protobuf::Map<std::string, uint64_t>& counts, const char* key) {
  auto it = counts.find(key);
  return it == counts.end() ? 0 : it->second;
}

// The counter over the agents' hosts, or over the observers' when they saw more (the server's
// host is where listen overflows happen).
int64_t CounterOf(const v1::RunReport& report, const char* key) {
  auto it = report.kernel_counters().find(key);
  int64_t agents = it == report.kernel_counters().end() ? 0 : it->second;
  int64_t observers = 0;
  for (const v1::ObserverReport& o : report.observers()) {
    auto c = o.kernel_counters().find(key);
    if (c != o.kernel_counters().end()) observers += c->second;
  }
  return std::max(agents, observers);
}

// tcp_abort_on_overflow on the server's host, when an observer reported it; the observers
// disagreeing count as unknown.
std::optional<std::string> AbortOnOverflow(const v1::RunReport& report) {
  std::optional<std::string> value;
  for (const v1::ObserverReport& o : report.observers()) {
    auto it = o.sysctls().find("net.ipv4.tcp_abort_on_overflow");
    if (it == o.sysctls().end()) continue;
    if (value.has_value() && *value != it->second) return std::nullopt;
    value = it->second;
  }
  return value;
}

void ObserveLostAgents(const v1::RunReport& report, std::vector<std::string>* out) {
  double duration_s =
      google::protobuf::util::TimeUtil::DurationToNanoseconds(report.spec().duration()) / 1e9;
  for (const v1::AgentReport& agent : report.agents()) {
    if (agent.lost_after_s() <= 0) continue;
    double share = 0;
    for (const v1::SourceBudget& s : report.tuple_budget().sources()) {
      if (s.agent() == agent.name()) share += s.requested_rate();
    }
    double missing_s = std::max(0.0, duration_s - agent.lost_after_s());
    if (agent.share_handed_on()) {
      out->push_back(absl::StrFormat(
          "%s was lost %.1f s into the run; its counts are those it last reported. Its share "
          "(%.0f connections/s) was handed to the agents still running for the remaining "
          "%.1f s (rebalance), so the run kept its requested rate.",
          agent.name(), agent.lost_after_s(), share, missing_s));
      continue;
    }
    // A lost agent may have been stopped (SIGSTOP, a paused VM) rather than gone: what it did
    // after its last telemetry is unknown here, bounded by the lease its engine holds.
    out->push_back(absl::StrFormat(
        "%s was lost %.1f s into the run; its counts are those it last reported, and any "
        "connection it started after that (its engine starts none later than its dead-man "
        "limit, 3 s by default, after this coordinator last answered it) is in no count. Its "
        "share (%.0f connections/s) went unrun for the remaining %.1f s, up to about %.0f "
        "connections fewer than asked; the other agents ran their own shares unchanged%s.",
        agent.name(), agent.lost_after_s(), share, missing_s, share * missing_s,
        report.spec().rebalance() ? " (no agent was still running to take it)"
                                  : " (--rebalance hands such a share on)"));
  }
}

// TIME_WAIT sockets the kernel destroyed at once because tcp_max_tw_buckets was reached: a cap
// on the whole namespace, whatever the sources (the prediction is in the tuple budget; this is
// what the kernel counted).
void ObserveTimeWaitOverflow(const v1::RunReport& report, std::vector<std::string>* out) {
  int64_t overflow = CounterOf(report, "TCPTimeWaitOverflow");
  if (overflow <= 0) return;
  bool predicted = false;
  bool client_time_wait = false;  // some source keeps TIME_WAIT: the budget's hold is it
  for (const v1::SourceBudget& s : report.tuple_budget().sources()) {
    predicted = predicted || s.limit() == v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS;
    client_time_wait = client_time_wait || PortLimitBinds(s.limit()) ||
                       s.limit() == v1::PORT_LIMIT_LIFTED_BY_TW_BUCKETS;
  }
  const char* ports = predicted ? "the ports did not run out, as the budget predicted"
                      : client_time_wait
                          ? "the ports lasted longer than the TIME_WAIT budget says"
                          : "the client's ports were never held by TIME_WAIT in this run (its "
                            "close leaves it none), so these were the server side's, sharing the "
                            "namespace, or other programs'";
  out->push_back(absl::StrFormat(
      "The kernel destroyed %d TIME_WAIT sockets as they closed (TCPTimeWaitOverflow): "
      "net.ipv4.tcp_max_tw_buckets was reached. It caps every TIME_WAIT socket of the network "
      "namespace (this run's sources, the server side when it shares the namespace, other "
      "programs), so those four-tuples were free again at once: %s, and TIME_WAIT protected "
      "nothing (a late segment of an old connection can land in a new one on the same tuple).",
      overflow, ports));
}

// Engine processes of a split shard that stopped answering (killed) or died mid-run.
void ObserveLostEngineProcesses(const v1::RunReport& report, std::vector<std::string>* out) {
  for (const v1::AgentReport& agent : report.agents()) {
    if (agent.engine_processes_lost() == 0) continue;
    out->push_back(absl::StrFormat(
        "%s: %u of its %u engine processes were lost mid-run (gave no answer within 2 s, so "
        "were killed: stopped or wedged; or died). Their counts are those of their last answer, "
        "and their part of %s's share, about %.0f%%, went unrun from then; the other processes "
        "ran on.",
        agent.name(), agent.engine_processes_lost(), agent.engine_processes(), agent.name(),
        100.0 * agent.engine_processes_lost() / std::max(1u, agent.engine_processes())));
  }
}

// The TCP state that held most of `ip`'s ports when it had the most in use (from the series),
// e.g. "TIME_WAIT", or "FIN_WAIT2" against a server that leaks CLOSE_WAIT; "" when unknown.
std::string StateHoldingPorts(const v1::RunReport& report, const std::string& agent,
                              const std::string& ip) {
  uint64_t most_ports = 0;
  std::string state;
  for (const v1::SeriesPoint& p : report.series()) {
    for (const v1::AgentPoint& a : p.agents()) {
      if (a.name() != agent) continue;
      for (const v1::SourcePoint& s : a.sources()) {
        if (s.ip() != ip || s.ports_in_use() < most_ports) continue;
        // The first of the largest, in the kernel's order; none when no state holds any.
        uint64_t most_sockets = 0;
        for (TcpState st : AllTcpStates()) {
          uint64_t n = CountOf(s.tcp_states(), st);
          if (n <= most_sockets) continue;
          most_sockets = n;
          most_ports = s.ports_in_use();
          state = TcpStateName(st);
        }
      }
    }
  }
  return state;
}

// The source that came closest to running out of ports, in words: its peak, the TCP state that
// held most of its ports, and what its host held before the run.
struct FullestSource {
  std::string words;  // "" when no source reported a port range
  std::string holder;
  std::string at_start;
  double fill = 0;
};

// What the host held of a source's range before the run, for a sentence on its exhaustion.
std::string AtStartWords(const v1::PortsAtStart& at_start, const v1::SourceReport& s) {
  return absl::StrFormat(
      " (before the run, sockets on the host held %d ports of the range, %d of them listeners'%s; "
      "%d were this source's own toward the targets)",
      at_start.in_use(), at_start.listening(),
      at_start.bind_taken_known()
          ? absl::StrFormat("; bind() had taken %d of them, as the kernel's port choice said",
                            at_start.bind_taken())
          : "",
      s.ports_in_use_at_start());
}

FullestSource FindFullestSource(const v1::RunReport& report) {
  FullestSource out;
  for (const v1::AgentReport& agent : report.agents()) {
    for (const v1::SourceReport& s : agent.sources()) {
      if (s.port_range_size() == 0) continue;
      double fill = static_cast<double>(s.peak_ports_in_use()) / s.port_range_size();
      if (fill < out.fill) continue;
      out.fill = fill;
      out.words = absl::StrFormat("%s (%s) peaked at %d of %d ports in use, %d in TIME_WAIT",
                                  s.ip(), agent.name(), s.peak_ports_in_use(), s.port_range_size(),
                                  s.peak_time_wait());
      out.holder = StateHoldingPorts(report, agent.name(), s.ip());
      out.at_start = agent.has_ports_at_start() ? AtStartWords(agent.ports_at_start(), s) : "";
    }
  }
  return out;
}

void ObservePortExhaustion(const v1::RunReport& report, std::vector<std::string>* out) {
  uint64_t no_port = CountOf(report.errors(), "EADDRNOTAVAIL");
  if (no_port > 0) {
    FullestSource fullest = FindFullestSource(report);
    const std::string& worst = fullest.words;
    const std::string& holder = fullest.holder;
    std::string remedy =
        ". More source IPs, destination IPs or ports raise the limit; so do RST close or pooling.";
    if (!worst.empty() && fullest.fill < 0.5) {
      // The source's own sockets cannot explain it: the rest of the range was taken elsewhere.
      remedy = absl::StrCat(
          ". The source's own sockets held under half the range, so the other ports "
          "were taken elsewhere on this host",
          fullest.at_start,
          ": connect() skips every port that bind() took on any address "
          "(bind mode bind, a client binding IPAddress.Any:0 or 0.0.0.0, servers listening "
          "inside the range) and every port in net.ipv4.ip_local_reserved_ports, whatever the "
          "source IP, so more source IPs do not help. `ss -tan` shows who holds the range; "
          "IP_BIND_ADDRESS_NO_PORT (bind mode no-port) on those clients, or a port range apart "
          "from them, frees it.");
    } else if (!holder.empty() && holder != "TIME_WAIT") {
      remedy = absl::StrCat(". Most of those ports were held in ", holder,
                            holder == "FIN_WAIT2"
                                ? ", not TIME_WAIT: the server never closed its side (CLOSE_WAIT "
                                  "on the server), so fix the server; more sources only delay it."
                                : ", not TIME_WAIT.");
    }
    out->push_back(absl::StrCat(no_port, " connects failed with EADDRNOTAVAIL",
                                OnWindows("EADDRNOTAVAIL"),
                                ": no local port was left for the four-tuple",
                                worst.empty() ? "" : absl::StrCat("; ", worst), remedy));
  }
  if (CountOf(report.errors(), "EADDRINUSE") > 0) {
    bool wildcard = report.spec().bind_mode() == v1::BIND_MODE_BIND_ANY;
    out->push_back(absl::StrCat(
        "bind() found no free port: EADDRINUSE", OnWindows("EADDRINUSE"),
        wildcard ? ". bind(0.0.0.0, 0), as binding IPAddress.Any:0 in .NET does, reserves a port "
                   "on every address and for every destination, so more source IPs do not help; "
                   "bind mode no-port with source IPs defers the choice to connect()"
                 : ". bind(ip, 0) reserves a port for every destination (IPAddress.Any:0 in .NET "
                   "does too, on every address); bind mode no-port defers the choice to "
                   "connect()"));
  }
}

// ListenDrops already counts every ListenOverflows (both rise when the accept queue is full;
// ListenDrops also for other drops): the figure is ListenDrops, never the sum of the two.
void ObserveListenQueue(const v1::RunReport& report, std::vector<std::string>* out) {
  int64_t overflows = CounterOf(report, "ListenOverflows");
  int64_t drops = std::max(CounterOf(report, "ListenDrops"), overflows);
  std::optional<std::string> abort = AbortOnOverflow(report);
  if (drops > 0) {
    uint64_t timeouts =
        CountOf(report.errors(), "connect-timeout") + CountOf(report.errors(), "ETIMEDOUT");
    std::string abort_clause =
        abort == "1"
            ? "; the server's host has tcp_abort_on_overflow=1, which resets only connections "
              "whose final ACK finds the accept queue full (ECONNRESET after connect), and drops "
              "SYNs all the same"
            : absl::StrCat(
                  "; tcp_abort_on_overflow=1",
                  abort.has_value() ? absl::StrCat(" (it is ", *abort, " on the server)") : "",
                  " would not change that: it resets only connections whose final ACK "
                  "finds the accept queue full, and SYNs are dropped either way");
    // A dropped SYN comes back only after the initial RTO (1 s, then 3 s, ...): say what the
    // clients' kernel did, from its own counter, not what it might have done.
    int64_t retransmits = 0;
    if (auto it = report.kernel_counters().find("TCPSynRetrans");
        it != report.kernel_counters().end()) {
      retransmits = it->second;
    }
    double connect_timeout_s =
        google::protobuf::util::TimeUtil::DurationToNanoseconds(report.spec().connect_timeout()) /
        1e9;
    std::string clients =
        retransmits > 0
            ? absl::StrCat("the clients' kernel retransmitted ", retransmits,
                           " SYNs (TCPSynRetrans), so connects were slow or timed out (")
            : absl::StrFormat(
                  "a dropped SYN is sent again only after about 1 s (then 3 s, 7 s), and the "
                  "connect timeout of %g s ran out first: connects timed out (",
                  connect_timeout_s);
    out->push_back(absl::StrCat("the listen queue overflowed: the server's host dropped ", drops,
                                " incoming SYNs or handshake ACKs at a listener (ListenDrops +",
                                drops, ", which includes ListenOverflows +", overflows,
                                "): on Linux a full accept queue drops them silently; ", clients,
                                timeouts, " here), not \"connection refused\"", abort_clause,
                                ". A Windows server answers a full backlog with RST instead, "
                                "which its clients see as ECONNREFUSED",
                                OnWindows("ECONNREFUSED")));
  }
  if (CountOf(report.errors(), "ECONNREFUSED") > 0) {
    out->push_back(absl::StrCat(
        "ECONNREFUSED", OnWindows("ECONNREFUSED"),
        ": the target's host answered the SYN with RST because nothing listened on that port; "
        "on Linux a full listen queue never does that (it drops the SYN, and "
        "tcp_abort_on_overflow=1 resets only after the handshake, seen as ECONNRESET), while a "
        "Windows server does"));
  }
}

// Figures about the engine itself: starts it could not make on time, and a loop that could not
// look at the kernel, whose delay then sits inside the latencies.
void ObserveEngine(const v1::RunReport& report, std::vector<std::string>* out) {
  const v1::Latency& latency = report.latency();
  const v1::LatencySummary& lag = latency.loop_lag();
  const v1::LatencySummary& call = latency.connect_call();
  double connect_timeout_ms =
      google::protobuf::util::TimeUtil::DurationToNanoseconds(report.spec().connect_timeout()) /
      1e6;
  std::string why;
  if (call.p99_ms() >= 1) {
    why = absl::StrFormat(
        "connect() itself took up to %.1f ms (p99 %.2f ms), the kernel searching a filling port "
        "range for a free port, so the engine could not start connections as fast as they fell "
        "due",
        call.max_ms(), call.p99_ms());
  } else if (connect_timeout_ms > 0 && lag.max_ms() >= connect_timeout_ms / 2) {
    why = absl::StrFormat(
        "its loop went up to %.0f ms without looking at the kernel: the agent's process was "
        "stopped or starved of CPU",
        lag.max_ms());
  } else {
    why =
        "the engine's threads could not keep up with the rate (give the agent more --threads, "
        "or spread the run over more agents)";
  }
  if (report.totals().late_starts() > 0) {
    out->push_back(absl::StrFormat(
        "%d scheduled starts were skipped because the engine came to them more than the connect "
        "timeout after they were due: %s. That load was not sent; none of it was sent late.",
        report.totals().late_starts(), why));
  }
  // Latencies are measured by the loop: when it was away for a good part of them, say so.
  double connect_p99 = latency.connect().p99_ms();
  if (lag.max_ms() >= kLoopLagWorthSayingMs && lag.max_ms() >= 0.1 * connect_p99) {
    out->push_back(absl::StrFormat(
        "latencies include the engine's own delay: its loop went up to %.0f ms (p99 %.1f ms) "
        "without looking at the kernel, so the connect p99 of %.1f ms is an upper bound for the "
        "network's. No connect timeout was counted for a handshake the kernel had completed by "
        "the time the loop looked.",
        lag.max_ms(), lag.p99_ms(), connect_p99));
  }
}

// EMFILE: one fd per connection, and the agent's process ran out of them.
void ObserveFdLimit(const v1::RunReport& report, std::vector<std::string>* out) {
  for (const v1::AgentReport& agent : report.agents()) {
    uint64_t emfile = 0;
    for (const v1::SourceReport& s : agent.sources()) emfile += CountOf(s.errors(), "EMFILE");
    if (emfile == 0) continue;
    out->push_back(absl::StrFormat(
        "%d connections on agent %s failed with EMFILE%s: each connection holds one file "
        "descriptor and its fd limit (ulimit -n) is %d, so it cannot hold more at once. Raise the "
        "soft limit toward the hard one, or spread the load over more agents.",
        emfile, agent.name(), OnWindows("EMFILE"), agent.fd_limit()));
  }
}

// Bind mode engine, client-first close: whether the kernel let it take its TIME_WAITs over
// (BoundConnectTakesOver), by the agents' own count of it (TWRecycled).
void ObserveTakenOver(const v1::RunReport& report, std::vector<std::string>* out) {
  if (report.spec().close_policy() != v1::CLOSE_POLICY_CLIENT_FIN) return;
  // The agents' hosts only: a server's own connect()s are not the engine's.
  auto it = report.kernel_counters().find("TWRecycled");
  const int64_t recycled = it == report.kernel_counters().end() ? 0 : it->second;
  if (recycled > 0) {
    out->push_back(absl::StrFormat(
        "the kernel let bind mode engine take over %d TIME_WAITs (TWRecycled): its connections "
        "had TCP timestamps, so a connect() from a port it bound took that four-tuple once its "
        "FIN was acknowledged, whatever tcp_tw_reuse says, and TIME_WAIT did not hold its ports "
        "for 60 s.",
        recycled));
  } else if (CountOf(report.errors(), "EADDRNOTAVAIL") > 0) {
    out->push_back(
        "bind mode engine ran out of ports toward a destination and the kernel took over no "
        "TIME_WAIT (TWRecycled +0): either every port was in use at once, or the connections "
        "had no TCP timestamps (tcp_timestamps off on the agent's host or the server's), and "
        "then each port waits its TIME_WAIT out. With them, the engine takes each over a "
        "retransmission timeout after the close.");
  }
}

// bind(ip, 0) took each port from the whole range, whatever the destination: while those sockets
// sit in TIME_WAIT, no other connect() on the host can use the port either. Bind mode engine
// binds its ports too (per destination), with the same effect on other programs.
void ObserveBoundPorts(const v1::RunReport& report, std::vector<std::string>* out) {
  const v1::BindMode mode = report.spec().bind_mode();
  if (mode != v1::BIND_MODE_BIND && mode != v1::BIND_MODE_ENGINE) return;
  uint64_t peak = 0;
  for (const v1::AgentReport& agent : report.agents()) {
    for (const v1::SourceReport& s : agent.sources()) peak = std::max(peak, s.peak_time_wait());
  }
  if (peak == 0) return;
  if (mode == v1::BIND_MODE_ENGINE) {
    out->push_back(absl::StrFormat(
        "bind mode engine bound each source port itself: while its sockets held them (up to %d "
        "in TIME_WAIT), other programs' connect() on the agent's host skipped those ports, as "
        "under bind mode bind; churnlab itself used each port toward every destination.",
        peak));
    ObserveTakenOver(report, out);
    return;
  }
  out->push_back(absl::StrFormat(
      "bind mode bind reserved each source port for every destination: up to %d of them sat in "
      "TIME_WAIT, and for 60 s after each close no other connect() on the agent's host (other "
      "programs included) can take that port, so they too may fail with EADDRNOTAVAIL. Bind "
      "mode no-port leaves the choice to connect(), where only the four-tuple must be unique.",
      peak));
}

void ObserveServerSide(const v1::RunReport& report, std::vector<std::string>* out) {
  for (const v1::ObserverReport& o : report.observers()) {
    for (const v1::ListenReport& l : o.listen()) {
      // A few sockets between the client's FIN and the server's close are normal at speed; a
      // leak holds a good share of the connections.
      uint64_t leak_floor = std::max<uint64_t>(50, report.totals().attempted() / 100);
      if (l.peak_close_wait() >= leak_floor) {
        out->push_back(absl::StrFormat(
            "the server %s (%s) held up to %d sockets in CLOSE_WAIT: it does not close after the "
            "client's FIN, so its sockets (and the clients' in FIN_WAIT2) pile up",
            o.name(), l.address(), l.peak_close_wait()));
      }
      if (l.peak_time_wait() > 0) {
        // Fewer than the connections closed within a TIME_WAIT (60 s) of each other: the clients
        // came back on tuples it held.
        double closed = report.totals().succeeded() *
                        (report.duration_s() > 60 ? 60 / report.duration_s() : 1.0);
        bool taken_over = l.peak_time_wait() < 0.9 * closed;
        out->push_back(absl::StrFormat(
            "TIME_WAIT landed on the server %s (%s, up to %d at once): the server closed first%s",
            o.name(), l.address(), l.peak_time_wait(),
            taken_over ? absl::StrFormat(
                             ". It holds at most one per client four-tuple, fewer than the %.0f "
                             "connections closed within 60 s: a SYN on a tuple in TIME_WAIT "
                             "takes it over, and a "
                             "Linux client's port search (connect() and bind() alike) cycles "
                             "through one parity of its range, free again at each close",
                             closed)
                       : ""));
      }
    }
  }
}

}  // namespace

std::vector<std::string> Observe(const v1::RunReport& report) {
  std::vector<std::string> out;
  if (!report.store_error().empty()) {
    out.push_back(absl::StrCat(
        "the coordinator's run store could not save this run (", report.store_error(),
        "): the coordinator keeps it and stores it once the store can write again; until then "
        "it is lost if the coordinator stops"));
  }
  ObserveLostAgents(report, &out);
  ObserveLostEngineProcesses(report, &out);
  ObserveTimeWaitOverflow(report, &out);
  ObservePortExhaustion(report, &out);
  ObserveListenQueue(report, &out);
  if (report.totals().missed_starts() > 0) {
    out.push_back(absl::StrCat(report.totals().missed_starts(),
                               " scheduled starts were skipped because max_in_flight connections "
                               "were open: the target answered slower than the offered load"));
  }
  if (std::string slowdown = ObserveConnectSlowdown(report); !slowdown.empty()) {
    out.push_back(std::move(slowdown));
  } else if (std::string engine = ObserveEnginePorts(report); !engine.empty()) {
    out.push_back(std::move(engine));
  }
  ObserveEngine(report, &out);
  ObserveFdLimit(report, &out);
  ObserveBoundPorts(report, &out);
  ObserveServerSide(report, &out);
  ObserveConntrackAndNat(report, &out);
  return out;
}

}  // namespace churnlab::analysis
