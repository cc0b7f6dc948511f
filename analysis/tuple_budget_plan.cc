// `churnlab budget`: the tuple budget for a client host described by its settings, with no agent
// to report them. Every figure comes from BudgetOfSource, the reports' own computation; each
// change it suggests is the same computation on changed inputs.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/hold_plan.h"
#include "analysis/tuple_budget.h"
#include "common/windows_errors.h"
#include "proto/message_json.h"
#include "proto/report_export.h"
#include "proto/run_spec.h"

namespace churnlab::analysis {
namespace {

constexpr HostPreset kPresets[] = {
    {"linux", HostOs::kLinux, 32768, 60999, kTimeWaitSeconds,
     "Linux's default net.ipv4.ip_local_port_range and its TIME_WAIT, fixed at 60 s"},
    {"windows", HostOs::kWindows, 49152, 65535, 240,
     "Windows' dynamic port range since Vista and Server 2008, and TIME_WAIT at "
     "TcpTimedWaitDelay's documented default of 240 s (2 x an MSL of 120 s)"},
    {"windows-legacy", HostOs::kWindows, 1025, 5000, 240,
     "Windows XP, Server 2003 and older: ports 1025 to MaxUserPort, 5000 unless the registry "
     "says otherwise (3976 ports), and 240 s of TIME_WAIT"},
};

bool IsLegacyWindows(const PlanInputs& in) {
  return in.os == HostOs::kWindows && in.port_low == 1025 && in.port_high <= 5000;
}

// Under bind mode none the kernel picks one address for the route, and bind-any's wildcard takes
// each port on every address: one source either way.
uint32_t SourcesOf(const PlanInputs& in) { return BindsSourceIp(in.bind) ? in.sources : 1; }

// tcp_tw_reuse acts where connect() picks the port; a port bind() took is held by its TIME_WAIT.
bool ReuseApplies(const PlanInputs& in) {
  return in.os == HostOs::kLinux && !BindReservesPort(in.bind) && in.bind != BindMode::kEngine &&
         ReuseDelay(in.tw_reuse, in.timestamps, in.loopback, in.tw_reuse_delay_s) > 0;
}

SourceFacts FactsOf(const PlanInputs& in) {
  return SourceFacts{
      .ports = in.port_high - in.port_low + 1ull,
      .destinations = BindReservesPort(in.bind) ? 1 : in.destinations,
      .time_wait_s = in.time_wait_s,
      .close = in.close,
      .reuse_delay_s = ReuseApplies(in) ? in.tw_reuse_delay_s : 0,
      .taken_over = in.os == HostOs::kLinux && in.bind == BindMode::kEngine &&
                    BoundConnectTakesOver(in.timestamps, in.loopback || in.server_timestamps)};
}

v1::SourceBudget OneSource(const PlanInputs& in) {
  return BudgetOfSource(FactsOf(in), in.rate / SourcesOf(in));
}

double TotalRate(const PlanInputs& in) { return OneSource(in).budget_rate() * SourcesOf(in); }

uint64_t TotalTuples(const PlanInputs& in) {
  SourceFacts facts = FactsOf(in);
  return facts.ports * facts.destinations * SourcesOf(in);
}

// A change to the plan's inputs, judged by the same computation.
struct Change {
  std::string name;
  PlanInputs inputs;
  std::string why;
  int preference = 0;  // among changes that lift the limit, the safest first
};

v1::BudgetLever Judge(const PlanInputs& base, const Change& change) {
  v1::BudgetLever lever;
  lever.set_change(change.name);
  v1::SourceBudget changed = OneSource(change.inputs);
  bool lifts = PortLimitBinds(OneSource(base).limit()) && !PortLimitBinds(changed.limit());
  lever.set_lifts_limit(lifts);
  std::string enough;
  if (!lifts) {
    double rate = TotalRate(change.inputs);
    double factor = rate * change.inputs.requests_per_connection /
                    (TotalRate(base) * base.requests_per_connection);
    lever.set_sustainable_rate(rate);
    lever.set_factor(factor);
    if (base.rate > 0) {
      double wanted = base.rate * base.requests_per_connection;
      bool carries = rate * change.inputs.requests_per_connection >= wanted;
      enough =
          absl::StrFormat(" (%s for %.0f requests/s)", carries ? "enough" : "not enough", wanted);
    }
  }
  lever.set_why(change.why + enough);
  return lever;
}

// How many sources (or destinations) carry `rate` when each adds `each`/s; twice `now` when no
// rate was asked for or the plan already carries it.
uint32_t CountFor(double rate, double each, uint32_t now) {
  if (rate <= 0 || each <= 0 || rate <= each * now) return now * 2;
  return static_cast<uint32_t>(std::min(1e6, std::ceil(rate / each - 1e-9)));
}

void AddLimitLifters(const PlanInputs& in, std::vector<Change>* out) {
  if (in.os == HostOs::kLinux && in.bind == BindMode::kEngine && in.timestamps > 0 &&
      !in.loopback && !in.server_timestamps) {
    PlanInputs c = in;
    c.server_timestamps = true;
    out->push_back({"a server with TCP timestamps", c,
                    "bind mode engine's connect() takes each TIME_WAIT over about 0.2 s after "
                    "the close when the server answers with TCP timestamps too (Linux servers "
                    "do unless net.ipv4.tcp_timestamps=0 there); this plan cannot know a remote "
                    "server's: say --server-timestamps, or --loopback for a target on this host"});
  } else if (in.os == HostOs::kLinux && in.bind == BindMode::kEngine && in.timestamps <= 0) {
    PlanInputs c = in;
    c.timestamps = 1;
    c.server_timestamps = true;  // "on both ends"
    out->push_back({"tcp_timestamps=1", c,
                    "sysctl -w net.ipv4.tcp_timestamps=1 on both ends: bind mode engine's "
                    "connect() then takes each TIME_WAIT over soon after the close"});
  } else if (in.os == HostOs::kLinux && in.bind != BindMode::kEngine && !ReuseApplies(in)) {
    // Not a lifter: reuse shortens the hold from TIME_WAIT to the reuse delay.
    PlanInputs c = in;
    c.tw_reuse = 1;
    c.timestamps = std::max(in.timestamps, 1);
    out->push_back(
        {in.timestamps > 0 ? "tcp_tw_reuse=1" : "tcp_tw_reuse=1, tcp_timestamps=1", c,
         absl::StrFormat("sysctl -w net.ipv4.tcp_tw_reuse=1%s: a new outgoing connection may take "
                         "over a TIME_WAIT four-tuple %g s (tcp_tw_reuse_delay) after its last "
                         "TCP timestamp; both ends need timestamps",
                         in.timestamps > 0 ? "" : " net.ipv4.tcp_timestamps=1",
                         in.tw_reuse_delay_s)});
  }
  PlanInputs server = in;
  server.close = ClosePolicy::kServerFin;
  out->push_back({"server closes first", server,
                  "let the server close first (HTTP: the server sends Connection: close): "
                  "TIME_WAIT moves to the server, which holds one socket per connection of the "
                  "last TIME_WAIT seconds, at most one per client four-tuple (memory, not "
                  "ports); churnlab's --close=server-fin",
                  1});
  PlanInputs rst = in;
  rst.close = ClosePolicy::kRst;
  out->push_back({"close with RST", rst,
                  "SO_LINGER {1, 0} (.NET: LingerState = new LingerOption(true, 0)): close() sends "
                  "RST and nobody "
                  "keeps TIME_WAIT, but data still in flight is lost and the server sees "
                  "ECONNRESET (Windows: 10054); churnlab's --close=rst",
                  2});
}

void AddPortRange(const PlanInputs& in, std::vector<Change>* out) {
  PlanInputs c = in;
  std::string how;
  if (in.os == HostOs::kLinux) {
    c.port_low = 1024;
    c.port_high = 65535;
    how =
        "sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\" (keep listening ports out of it "
        "with net.ipv4.ip_local_reserved_ports)";
  } else if (IsLegacyWindows(in)) {
    c.port_high = 65534;
    how =
        "registry HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters\\MaxUserPort = "
        "65534, then restart";
  } else {
    c.port_low = 1025;
    c.port_high = 65535;
    how = "netsh int ipv4 set dynamicport tcp start=1025 num=64511";
  }
  if (c.port_high - c.port_low <= in.port_high - in.port_low) return;
  out->push_back({absl::StrFormat("ports %d-%d", c.port_low, c.port_high), c, how});
}

void AddCountChanges(const PlanInputs& in, std::vector<Change>* out) {
  // Source IPs count only where the client binds them: bind modes none and bind-any become
  // no-port, and a source then gets what no-port gives it.
  PlanInputs sources = in;
  if (!BindsSourceIp(in.bind)) {
    sources.bind = BindMode::kNoPort;
    sources.sources = 1;
  }
  double per_source = TotalRate(sources) / SourcesOf(sources);
  sources.sources = CountFor(in.rate, per_source, SourcesOf(in));
  out->push_back(
      {absl::StrFormat(BindsSourceIp(in.bind) ? "%d source IPs" : "%d source IPs, bind no-port",
                       sources.sources),
       sources,
       absl::StrFormat(
           "each source IP adds %.0f new connections/s (ports x "
           "destinations / %s)%s",
           per_source, ReuseApplies(sources) ? "tcp_tw_reuse_delay" : "TIME_WAIT",
           BindsSourceIp(in.bind) ? "" : "; the client must bind them (bind mode no-port)")});
  if (BindReservesPort(in.bind)) {
    PlanInputs no_port = in;
    no_port.bind = BindMode::kNoPort;
    if (in.destinations == 1) no_port.destinations = 2;
    out->push_back(
        {absl::StrFormat("bind mode no-port, %d destinations", no_port.destinations), no_port,
         "bind() to port 0 (bind(ip, 0), or IPAddress.Any:0 in .NET) reserves each "
         "port for every destination; IP_BIND_ADDRESS_NO_PORT (or no bind at all) leaves the "
         "choice to connect(), so each destination ip:port has all the ports again"});
    return;
  }
  PlanInputs dests = in;
  double per_destination = TotalRate(in) / in.destinations;
  dests.destinations = CountFor(in.rate, per_destination, in.destinations);
  out->push_back({absl::StrFormat("%d destinations", dests.destinations), dests,
                  absl::StrFormat("each destination ip:port adds %.0f new connections/s: only "
                                  "the four-tuple must be unique (more server ports or IPs "
                                  "behind the same service)",
                                  per_destination)});
}

std::vector<v1::BudgetLever> Levers(const PlanInputs& in) {
  std::vector<Change> changes;
  AddLimitLifters(in, &changes);
  if (in.requests_per_connection < 100) {
    PlanInputs pooled = in;
    pooled.requests_per_connection = 100;
    changes.push_back({"100 requests per connection", pooled,
                       "keep connections open (keep-alive; in .NET one shared HttpClient or "
                       "IHttpClientFactory, not a new HttpClient per request): the budget counts "
                       "new connections, not requests"});
  }
  AddPortRange(in, &changes);
  if (in.os == HostOs::kWindows && in.time_wait_s > kMinTcpTimedWaitDelay) {
    PlanInputs c = in;
    c.time_wait_s = kMinTcpTimedWaitDelay;
    changes.push_back({"TcpTimedWaitDelay=30", c,
                       "registry HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters\\"
                       "TcpTimedWaitDelay = 30 (seconds, 30-300), then restart"});
  }
  AddCountChanges(in, &changes);
  std::vector<std::pair<const Change*, v1::BudgetLever>> judged;
  for (const Change& c : changes) judged.emplace_back(&c, Judge(in, c));
  std::stable_sort(judged.begin(), judged.end(), [](const auto& a, const auto& b) {
    if (a.second.lifts_limit() != b.second.lifts_limit()) return a.second.lifts_limit();
    if (a.second.lifts_limit()) return a.first->preference < b.first->preference;
    return a.second.factor() > b.second.factor();
  });
  std::vector<v1::BudgetLever> out;
  for (auto& [change, lever] : judged) {
    if (lever.lifts_limit() || lever.factor() > 1.001) out.push_back(std::move(lever));
  }
  return out;
}

// Where TIME_WAIT lands, and how many sockets it holds at the plan's rate once settled: one
// per connection of the last TIME_WAIT seconds, at most one per four-tuple. The client skips a
// tuple in TIME_WAIT, so its TIME_WAIT can fill every tuple. The server's cannot: a new SYN on a
// tuple takes its TIME_WAIT over, and a Linux client's port search (connect() and bind() alike)
// tries the ports of one parity first, free again at each close, so the server holds at most
// half the client's tuples.
uint64_t ServerTimeWaitCeiling(const PlanInputs& in) {
  SourceFacts facts = FactsOf(in);
  uint64_t ports = in.os == HostOs::kLinux ? (facts.ports + 1) / 2 : facts.ports;
  return ports * facts.destinations * SourcesOf(in);
}

void PlaceTimeWait(const PlanInputs& in, v1::BudgetPlan* plan) {
  if (in.close == ClosePolicy::kRst) {
    plan->set_time_wait_side(v1::TIME_WAIT_SIDE_NONE);
    return;
  }
  bool server = in.close == ClosePolicy::kServerFin;
  plan->set_time_wait_side(server ? v1::TIME_WAIT_SIDE_SERVER : v1::TIME_WAIT_SIDE_CLIENT);
  double tuples = static_cast<double>(server ? ServerTimeWaitCeiling(in) : TotalTuples(in));
  double held = std::min(in.rate * in.time_wait_s, tuples);
  plan->set_time_wait_sockets(static_cast<uint64_t>(std::llround(held)));
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// How long a closed tuple is held, in words.
std::string HoldWords(const PlanInputs& in, const v1::SourceBudget& one) {
  if (one.limit() == v1::PORT_LIMIT_TW_REUSE) {
    return absl::StrFormat(
        "tcp_tw_reuse taking over a TIME_WAIT tuple %g s after its last "
        "timestamp",
        one.hold_s());
  }
  if (one.limit() == v1::PORT_LIMIT_TAKEN_OVER) {
    return absl::StrFormat("%g s of %s (TCP timestamps)", one.hold_s(), HoldName(one.limit()));
  }
  return absl::StrFormat("%.0f s of TIME_WAIT", in.time_wait_s);
}

std::string Summary(const PlanInputs& in, const v1::BudgetPlan& plan) {
  const v1::SourceBudget& one = plan.per_source();
  std::string head =
      absl::StrFormat("%s x %s with %d ports (%d-%d) and %s sustain %.0f new connections/s",
                      Plural(plan.sources(), "source IP", "source IPs"),
                      Plural(one.destinations(), "destination", "destinations"), one.ports(),
                      in.port_low, in.port_high, HoldWords(in, one), plan.total_rate());
  if (in.requests_per_connection > 1) {
    absl::StrAppendFormat(&head, " (%.0f requests/s at %d requests per connection)",
                          plan.total_request_rate(), in.requests_per_connection);
  }
  if (one.limit() == v1::PORT_LIMIT_NO_CLIENT_TIME_WAIT) {
    return head + (in.close == ClosePolicy::kRst
                       ? ", but closing with RST leaves no TIME_WAIT, so it does not bind."
                       : ", but the server closes first and keeps the TIME_WAIT, so it does "
                         "not bind the client's ports.");
  }
  if (in.rate <= 0) return head + ".";
  std::string error = plan.linux_error();
  if (plan.exhaustion_after_s() <= 0) {
    return absl::StrFormat("%s. At %.0f/s (%.0f%% of it) the ports do not run out.", head, in.rate,
                           100 * in.rate / plan.total_rate());
  }
  const v1::WindowsError& w = plan.windows_error();
  std::string fails =
      in.os == HostOs::kWindows
          ? absl::StrFormat("%d %s, \"%s\" (%s on Linux)", w.code(), w.name(), w.message(), error)
          : absl::StrFormat("%s (Windows: %d %s, \"%s\")", error, w.code(), w.name(), w.message());
  return absl::StrFormat(
      "%s. At %.0f/s the ports run out after about %s s, after %d connections: then %s fails "
      "with %s for whatever is asked above %.0f/s.",
      head, in.rate, PlanSeconds(plan.exhaustion_after_s()), plan.connections_until_exhaustion(),
      BindReservesPort(in.bind) ? "bind()" : "connect()", fails, plan.total_rate());
}

// Where connect() time binds: the kernel's free-port search (bind modes none and no-port) slows
// from about half of a source's tuples in use; bind mode engine picks the port itself.
void AddPortSearchNote(const PlanInputs& in, v1::BudgetPlan& plan) {
  if (in.os != HostOs::kLinux) return;
  const uint64_t tuples = TotalTuples(in);
  double fill = 0;
  if (in.rate > 0 && plan.total_rate() > 0) fill = std::min(1.0, in.rate / plan.total_rate());
  if (in.hold > 0 && tuples > 0) fill = std::max(fill, std::min(1.0, 1.0 * in.hold / tuples));
  if (in.bind == BindMode::kEngine) {
    plan.add_notes(
        "bind mode engine: each destination has every port again, connect() does not slow as "
        "the range fills, and with TCP timestamps at both ends its connect() takes a port's "
        "TIME_WAIT over 0.2 s or more after the close, whatever tcp_tw_reuse says (counted here "
        "only with --loopback or --server-timestamps: a remote server decides). While held, its "
        "ports are skipped by other programs' connect() on the host, as under bind mode bind.");
  } else if ((in.bind == BindMode::kNone || in.bind == BindMode::kNoPort) && fill >= 0.5) {
    plan.add_notes(absl::StrFormat(
        "This fills about %.0f%% of each source's four-tuples: connect() searches the port "
        "range for a free one, and that search slows from about half full (up to seconds per "
        "connect() near the end). --bind=engine picks each port in the engine instead, and "
        "connect() stays as fast at any fill.",
        100 * fill));
  }
}

void AddNotes(const PlanInputs& in, v1::BudgetPlan* plan) {
  if (in.os == HostOs::kLinux) {
    plan->add_notes(
        "Linux keeps TIME_WAIT for 60 s, fixed at compile time (TCP_TIMEWAIT_LEN); "
        "net.ipv4.tcp_fin_timeout sets how long an orphaned FIN_WAIT2 lasts, not TIME_WAIT.");
  }
  if (IsLegacyWindows(in)) {
    plan->add_notes(
        "Windows of the MaxUserPort era (XP, Server 2003 and older) reported running out of "
        "ports as 10055 WSAENOBUFS (\"An operation on a socket could not be performed because "
        "the system lacked sufficient buffer space or because a queue was full.\", KB 196271); "
        "newer Windows as 10048 WSAEADDRINUSE.");
  }
  if (in.bind == BindMode::kBind && in.destinations > 1) {
    plan->add_notes(absl::StrFormat(
        "bind mode bind: bind(ip, 0) reserves each port for every destination, so the %d "
        "destinations count as one.",
        in.destinations));
  }
  if (in.bind == BindMode::kNone && in.sources > 1) {
    plan->add_notes(
        "bind mode none: the kernel picks one source address per route, so only one source IP "
        "counts.");
  }
  if (in.bind == BindMode::kBindAny) {
    plan->add_notes(absl::StrFormat(
        "bind mode bind-any: bind(0.0.0.0, 0), like binding IPAddress.Any:0, takes each port on "
        "every address and for every destination, so %d source IP%s and %d destination%s count "
        "as one, and tcp_tw_reuse does not shorten the TIME_WAIT a bound port waits out.",
        in.sources, in.sources == 1 ? "" : "s", in.destinations, in.destinations == 1 ? "" : "s"));
  }
  if (in.os == HostOs::kLinux && in.tw_reuse > 0 && in.timestamps == 0 &&
      in.close == ClosePolicy::kClientFin) {
    plan->add_notes(absl::StrFormat(
        "tcp_tw_reuse=%d, but tcp_timestamps=0: the kernel takes over a TIME_WAIT tuple only by "
        "its TCP timestamp, so TIME_WAIT binds in full.",
        in.tw_reuse));
  } else if (in.os == HostOs::kLinux && in.tw_reuse == 2 && !in.loopback &&
             in.close == ClosePolicy::kClientFin) {
    plan->add_notes(
        "tcp_tw_reuse=2 (the default of recent kernels) reuses TIME_WAIT tuples of loopback "
        "connections only, and these are not loopback ones (say --loopback if they are).");
  }
  AddPortSearchNote(in, *plan);
  if (plan->time_wait_sockets() > 0) {
    plan->add_notes(absl::StrFormat("At %.0f/s the %s holds about %d sockets in TIME_WAIT.",
                                    in.rate, Word(plan->time_wait_side()),
                                    plan->time_wait_sockets()));
  }
}

}  // namespace

v1::BudgetPlan PlanBudget(const PlanInputs& in) {
  v1::BudgetPlan plan;
  plan.set_os(in.os == HostOs::kLinux ? v1::HOST_OS_LINUX : v1::HOST_OS_WINDOWS);
  plan.set_sources(SourcesOf(in));
  plan.set_destinations(in.destinations);
  plan.set_port_low(in.port_low);
  plan.set_port_high(in.port_high);
  plan.set_time_wait_s(in.time_wait_s);
  plan.set_tw_reuse(in.tw_reuse);
  plan.set_loopback(in.loopback);
  plan.set_server_timestamps(in.server_timestamps);
  if (in.os == HostOs::kLinux) {
    plan.set_timestamps(in.timestamps);
    plan.set_tw_reuse_delay_s(in.tw_reuse_delay_s);
  }
  plan.set_close_policy(ToProto(in.close));
  plan.set_bind_mode(ToProto(in.bind));
  plan.set_requests_per_connection(in.requests_per_connection);
  plan.set_rate(in.rate);
  *plan.mutable_per_source() = OneSource(in);
  plan.set_total_rate(TotalRate(in));
  plan.set_total_request_rate(plan.total_rate() * in.requests_per_connection);
  if (plan.per_source().exhaustion_after_s() > 0) {
    plan.set_exhaustion_after_s(plan.per_source().exhaustion_after_s());
    plan.set_connections_until_exhaustion(TotalTuples(in));
  }
  PlaceTimeWait(in, &plan);
  // Out of ports, Linux fails connect() (or bind(), under bind mode bind); Windows says 10048.
  plan.set_linux_error(BindReservesPort(in.bind) ? "EADDRINUSE" : "EADDRNOTAVAIL");
  // Windows of the MaxUserPort era said 10055 WSAENOBUFS for it, newer ones 10048.
  if (const WindowsError* w =
          WindowsErrorFor(IsLegacyWindows(in) ? "ENOBUFS" : plan.linux_error())) {
    *plan.mutable_windows_error() = WindowsErrorToProto(*w);
  }
  if (PortLimitBinds(plan.per_source().limit())) {
    for (v1::BudgetLever& lever : Levers(in)) *plan.add_levers() = std::move(lever);
  }
  AddNotes(in, &plan);
  plan.set_summary(Summary(in, plan));
  if (in.hold > 0) *plan.mutable_hold() = PlanHold(in, FactsOf(in), SourcesOf(in));
  return plan;
}

std::span<const HostPreset> HostPresets() { return kPresets; }

const HostPreset* FindHostPreset(absl::string_view name) {
  for (const HostPreset& p : kPresets) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

}  // namespace churnlab::analysis
