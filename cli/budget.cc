#include "cli/budget.h"

#include <string.h>

#include <cstdio>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "analysis/tuple_budget.h"
#include "common/errno_name.h"
#include "common/flags.h"
#include "common/terminal_text.h"
#include "proto/message_json.h"
#include "proto/report_export.h"

namespace churnlab {
namespace {

using analysis::HostOs;
using analysis::HostPreset;
using analysis::PlanInputs;

constexpr char kSummary[] =
    "Plans the tuple budget of a client host without a coordinator or agents: the new\n"
    "connections/s its source IPs can sustain toward its destinations before the four-tuples run\n"
    "out, how long --rate lasts, and what changes the budget most. The same computation as a\n"
    "run's report (sum over source IP x destination of ports / TIME_WAIT seconds).\n"
    "Presets: linux (ports 32768-60999, TIME_WAIT 60 s), windows (49152-65535, 240 s),\n"
    "windows-legacy (1025-5000: MaxUserPort's default, sometimes searched as MaxUserPorts;\n"
    "240 s); flags override them. Without a preset: linux, or windows when a Windows registry\n"
    "value is given.\n"
    "Examples:\n"
    "  churnlab budget --rate=1000\n"
    "  churnlab budget --preset=windows --tcp-timed-wait-delay=30 --rate=500 --json\n"
    "  churnlab budget --sources=4 --destinations=2 --port-range=40000-40999 --time-wait=60s\n"
    "  churnlab budget --hold=1000000 --sources=40 --same-host --file-max=1228800 --memory=16GiB\n"
    "With --hold=N: how many connections the host can hold open at once and what binds first.\n"
    "Exit codes: 0 the budget carries --rate and the host --hold (or neither was given), 1 the\n"
    "ports run out at --rate or --hold does not fit, 2 invalid input.";

// What the flags said, before presets fill the rest.
struct BudgetFlags {
  std::string preset;
  int64_t sources = 1;
  int64_t destinations = 1;
  std::optional<std::pair<uint32_t, uint32_t>> port_range;
  std::optional<double> time_wait_s;
  std::optional<double> timed_wait_delay;
  std::optional<uint32_t> max_user_port;
  std::optional<int> tw_reuse;
  std::optional<int> timestamps;
  std::optional<double> tw_reuse_delay_s;
  bool loopback = false;
  bool server_timestamps = false;
  ClosePolicy close = ClosePolicy::kClientFin;
  BindMode bind = BindMode::kNoPort;
  int64_t requests_per_connection = 1;
  double rate = 0;
  int64_t hold = 0;
  bool same_host = false;
  std::optional<uint64_t> file_max;
  std::optional<uint64_t> memory_bytes;
  bool json = false;
};

// "16GiB", "512MiB", "2G", "1000000" (bytes).
absl::Status ParseBytes(absl::string_view text, std::optional<uint64_t>* out) {
  static constexpr std::pair<const char*, double> kUnits[] = {
      {"TiB", 0x1p40}, {"GiB", 0x1p30}, {"MiB", 0x1p20}, {"KiB", 0x1p10}, {"T", 1e12},
      {"G", 1e9},      {"M", 1e6},      {"K", 1e3},      {"B", 1}};
  double scale = 1;
  for (const auto& [suffix, factor] : kUnits) {
    if (absl::ConsumeSuffix(&text, suffix)) {
      scale = factor;
      break;
    }
  }
  double value = 0;
  if (!ParseFiniteDouble(text, &value) || value <= 0 || value * scale > 0x1p60) {
    return absl::InvalidArgumentError("expected a size like 16GiB, 512MiB or bytes");
  }
  *out = static_cast<uint64_t>(value * scale);
  return absl::OkStatus();
}

absl::Status ParsePortRange(absl::string_view text, BudgetFlags* f) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(text, absl::ByAnyChar("- \t"), absl::SkipEmpty());
  uint32_t low = 0;
  uint32_t high = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &low) ||
      !absl::SimpleAtoi(parts[1], &high)) {
    return absl::InvalidArgumentError("expected LO-HI, like 32768-60999");
  }
  if (low < 1 || high > 65535 || low > high) {
    return absl::InvalidArgumentError("expected 1 <= LO <= HI <= 65535");
  }
  f->port_range = std::make_pair(low, high);
  return absl::OkStatus();
}

absl::Status ParseSeconds(absl::string_view text, std::optional<double>* out) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration() || d > absl::Hours(1)) {
    return absl::InvalidArgumentError("expected a duration above 0 and at most 1h, like 60s or 4m");
  }
  *out = absl::ToDoubleSeconds(d);
  return absl::OkStatus();
}

template <typename T>
FlagSet::Parser Optional(std::optional<T>* out, T low, T high) {
  return [out, low, high](absl::string_view text) {
    T value;
    if (absl::Status s = InRange(&value, low, high)(text); !s.ok()) return s;
    *out = value;
    return absl::OkStatus();
  };
}

// --hold and what it needs to know of the host.
void AddHoldFlags(FlagSet& flags, BudgetFlags* f) {
  flags.Custom("hold", "N", "none",
               "connections to hold open at once: how many the host can hold and what binds "
               "first (four-tuples, fs.file-max, memory)",
               InRange<int64_t>(&f->hold, 1, 1'000'000'000'000));
  flags.Bool("same-host", &f->same_host,
             "with --hold: both ends on this kernel (2 fds and both ends' memory a connection)");
  flags.Custom("file-max", "N", "unbounded", "with --hold: the host's fs.file-max",
               [f](absl::string_view v) {
                 uint64_t n = 0;
                 if (!absl::SimpleAtoi(v, &n) || n == 0) {
                   return absl::InvalidArgumentError("expected a positive integer");
                 }
                 f->file_max = n;
                 return absl::OkStatus();
               });
  flags.Custom("memory", "SIZE", "unbounded",
               "with --hold: memory the connections may use, like 16GiB",
               [f](absl::string_view v) { return ParseBytes(v, &f->memory_bytes); });
}

// Linux's TIME_WAIT settings, and what is known of the connections' two ends.
void AddLinuxFlags(FlagSet& flags, BudgetFlags* f) {
  flags.Custom("tw-reuse", "0|1|2", "2 on linux", "Linux's net.ipv4.tcp_tw_reuse",
               Optional<int>(&f->tw_reuse, 0, 2));
  flags.Custom("timestamps", "0|1|2", "1 on linux",
               "Linux's net.ipv4.tcp_timestamps (tcp_tw_reuse needs them)",
               Optional<int>(&f->timestamps, 0, 2));
  flags.Custom("tw-reuse-delay", "DURATION", "1s on linux",
               "Linux's net.ipv4.tcp_tw_reuse_delay: how long after a TIME_WAIT tuple's last "
               "timestamp reuse may take it over",
               [f](absl::string_view v) { return ParseSeconds(v, &f->tw_reuse_delay_s); });
  flags.Bool("loopback", &f->loopback,
             "the connections are loopback ones (tcp_tw_reuse=2 applies)");
  flags.Bool("server-timestamps", &f->server_timestamps,
             "the server answers with TCP timestamps (Linux's default): --bind=engine then takes "
             "each TIME_WAIT over about 0.2 s after the close");
}

void AddFlags(FlagSet& flags, BudgetFlags* f) {
  flags.String("preset", &f->preset, "linux, windows or windows-legacy");
  flags.Custom("sources", "N", "1", "source IPs", InRange<int64_t>(&f->sources, 1, 1'000'000));
  flags.Custom("destinations", "N", "1", "destination ip:ports",
               InRange<int64_t>(&f->destinations, 1, 1'000'000));
  flags.Custom("port-range", "LO-HI", "the preset's", "the local (ephemeral) port range",
               [f](absl::string_view v) { return ParsePortRange(v, f); });
  flags.Custom("time-wait", "DURATION", "the preset's", "how long TIME_WAIT lasts",
               [f](absl::string_view v) { return ParseSeconds(v, &f->time_wait_s); });
  flags.Custom("tcp-timed-wait-delay", "SECONDS", "",
               "Windows' TcpTimedWaitDelay registry value (30-300): TIME_WAIT in seconds",
               [f](absl::string_view v) {
                 double seconds = 0;
                 if (!ParseFiniteDouble(v, &seconds) || seconds < analysis::kMinTcpTimedWaitDelay ||
                     seconds > analysis::kMaxTcpTimedWaitDelay) {
                   return absl::InvalidArgumentError("expected seconds from 30 to 300");
                 }
                 f->timed_wait_delay = seconds;
                 return absl::OkStatus();
               });
  flags.Custom("max-user-port", "N", "",
               "legacy Windows' MaxUserPort registry value (5000-65534): ports 1025-N",
               Optional<uint32_t>(&f->max_user_port, 5000, 65534));
  AddLinuxFlags(flags, f);
  flags.Custom("close", "POLICY", "client-fin", "who closes first: client-fin, rst, server-fin",
               [f](absl::string_view v) {
                 absl::StatusOr<ClosePolicy> p = ParseClosePolicy(v);
                 if (p.ok()) f->close = *p;
                 return p.status();
               });
  flags.Custom("bind", "MODE", "no-port",
               "none, no-port, bind (bind(ip, 0)), bind-any (bind(0.0.0.0, 0), IPAddress.Any:0) "
               "or engine (the engine picks each port, per destination)",
               [f](absl::string_view v) {
                 absl::StatusOr<BindMode> m = ParseBindMode(v);
                 if (m.ok()) f->bind = *m;
                 return m.status();
               });
  flags.Custom("requests-per-connection", "N", "1", "requests each connection carries",
               InRange<int64_t>(&f->requests_per_connection, 1, 1'000'000'000));
  flags.Custom("rate", "R", "none", "new connections/s wanted, over all sources",
               [f](absl::string_view v) {
                 if (!ParseFiniteDouble(v, &f->rate) || f->rate < 0 || f->rate > kMaxRate) {
                   return absl::InvalidArgumentError("expected new connections/s from 0 to 5e6");
                 }
                 return absl::OkStatus();
               });
  AddHoldFlags(flags, f);
  flags.Bool("json", &f->json, "print the plan as JSON (a BudgetPlan, report.proto)");
}

// The inputs, presets applied, or INVALID_ARGUMENT naming the flags that disagree.
absl::StatusOr<PlanInputs> Resolve(const BudgetFlags& f) {
  std::string name = f.preset;
  if (name.empty()) {
    name = f.max_user_port ? "windows-legacy" : f.timed_wait_delay ? "windows" : "linux";
  }
  const HostPreset* preset = analysis::FindHostPreset(name);
  if (preset == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--preset=", name, ": unknown preset (expected linux, windows or windows-legacy)"));
  }
  PlanInputs in;
  in.os = preset->os;
  bool windows = in.os == HostOs::kWindows;
  if ((f.timed_wait_delay || f.max_user_port) && !windows) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tcp-timed-wait-delay and --max-user-port are Windows registry values; --preset=", name,
        " is not Windows"));
  }
  if ((f.tw_reuse || f.timestamps || f.tw_reuse_delay_s || f.server_timestamps) && windows) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tw-reuse, --timestamps, --tw-reuse-delay and --server-timestamps are Linux settings; "
        "--preset=",
        name, " is Windows"));
  }
  if (f.time_wait_s && f.timed_wait_delay) {
    return absl::InvalidArgumentError("give --time-wait or --tcp-timed-wait-delay, not both");
  }
  if (f.port_range && f.max_user_port) {
    return absl::InvalidArgumentError("give --port-range or --max-user-port, not both");
  }
  if (f.bind == BindMode::kNone && f.sources > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--sources=", f.sources,
        " with --bind=none: the kernel then picks one source address; bind them (--bind=no-port)"));
  }
  in.port_low = f.port_range ? f.port_range->first : f.max_user_port ? 1025 : preset->port_low;
  in.port_high = f.port_range ? f.port_range->second : f.max_user_port.value_or(preset->port_high);
  in.time_wait_s = f.time_wait_s.value_or(f.timed_wait_delay.value_or(preset->time_wait_s));
  in.sources = static_cast<uint32_t>(f.sources);
  in.destinations = static_cast<uint32_t>(f.destinations);
  in.tw_reuse = f.tw_reuse.value_or(windows ? 0 : 2);
  in.timestamps = f.timestamps.value_or(windows ? 0 : 1);
  in.tw_reuse_delay_s = f.tw_reuse_delay_s.value_or(kTwReuseDelaySeconds);
  in.loopback = f.loopback;
  in.server_timestamps = f.server_timestamps;
  in.close = f.close;
  in.bind = f.bind;
  in.requests_per_connection = f.requests_per_connection;
  in.rate = f.rate;
  if ((f.same_host || f.file_max || f.memory_bytes) && f.hold == 0) {
    return absl::InvalidArgumentError("--same-host, --file-max and --memory go with --hold=N");
  }
  in.hold = static_cast<uint64_t>(f.hold);
  in.same_host = f.same_host;
  in.file_max = f.file_max;
  in.memory_bytes = f.memory_bytes;
  return in;
}

std::string LinuxWords(const std::string& name) {
  int err = ErrnoFromName(name);
  return err > 0 ? absl::StrCat(name, " (\"", strerror(err), "\")") : name;
}

std::string Lever(const v1::BudgetLever& lever) {
  std::string effect =
      lever.lifts_limit()
          ? std::string("lifts the limit")
          : absl::StrFormat("%.0f/s, x%.1f", lever.sustainable_rate(), lever.factor());
  return absl::StrFormat("  %-34s %-20s %s\n", lever.change(), effect, lever.why());
}

}  // namespace

std::string FormatBudgetPlan(const v1::BudgetPlan& p) {
  const v1::SourceBudget& one = p.per_source();
  std::string out = absl::StrFormat(
      "Tuple budget (%s): %d source IP(s) x %d destination(s), ports %d-%d (%d), TIME_WAIT %.0f "
      "s, close %s, bind %s%s, %d request(s) per connection\n\n",
      Word(p.os()), p.sources(), p.destinations(), p.port_low(), p.port_high(), one.ports(),
      p.time_wait_s(), Word(p.close_policy()), Word(p.bind_mode()),
      p.os() == v1::HOST_OS_LINUX
          ? absl::StrFormat(", tcp_tw_reuse %d (timestamps %d%s, delay %g s)", p.tw_reuse(),
                            p.timestamps(), p.server_timestamps() ? ", the server's too" : "",
                            p.tw_reuse_delay_s())
          : "",
      p.requests_per_connection());
  absl::StrAppendFormat(&out, "  one source:   %d ports x %d destination(s) / %g s%s = %.0f/s\n",
                        one.ports(), one.destinations(), one.hold_s(),
                        one.limit() == v1::PORT_LIMIT_TIME_WAIT
                            ? ""
                            : absl::StrCat(" (", analysis::HoldName(one.limit()), ")"),
                        one.budget_rate());
  absl::StrAppendFormat(&out, "  sustainable:  %.0f new connections/s (%.0f requests/s)\n",
                        p.total_rate(), p.total_request_rate());
  if (p.rate() > 0) {
    absl::StrAppendFormat(&out, "  %-14s", absl::StrFormat("at %.0f/s:", p.rate()));
    if (p.exhaustion_after_s() > 0) {
      absl::StrAppendFormat(&out, "ports run out after %s s, after %d connections; then %.0f/s\n",
                            analysis::PlanSeconds(p.exhaustion_after_s()),
                            p.connections_until_exhaustion(), p.total_rate());
    } else {
      absl::StrAppend(&out, "ports do not run out\n");
    }
  }
  absl::StrAppendFormat(&out, "  out of ports: Linux %s\n", LinuxWords(p.linux_error()));
  if (p.has_windows_error()) {
    const v1::WindowsError& w = p.windows_error();
    absl::StrAppendFormat(&out, "                Windows %d %s (SocketError.%s) \"%s\"\n", w.code(),
                          w.name(), w.dotnet_name(), w.message());
  }
  absl::StrAppend(&out, "\n", p.summary(), "\n");
  if (p.levers_size() > 0) {
    absl::StrAppend(&out, "\nWhat changes it most:\n");
    for (const v1::BudgetLever& lever : p.levers()) absl::StrAppend(&out, Lever(lever));
  }
  if (p.has_hold()) absl::StrAppend(&out, "\n", p.hold().summary(), "\n");
  if (p.notes_size() > 0) absl::StrAppend(&out, "\n");
  for (const std::string& note : p.notes()) absl::StrAppend(&out, "  note: ", note, "\n");
  return out;
}

int BudgetCommand(int argc, char** argv) {
  const std::string program = "churnlab budget";
  BudgetFlags f;
  FlagSet flags(program, kSummary);
  AddFlags(flags, &f);
  flags.ParseFlagsOnlyOrExit(argc, argv);
  absl::StatusOr<PlanInputs> inputs = Resolve(f);
  if (!inputs.ok()) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(),
                 TerminalSafe(inputs.status().message()).c_str());
    return kExitBadInput;
  }
  v1::BudgetPlan plan = analysis::PlanBudget(*inputs);
  std::string text = f.json ? MessageToJson(plan) : FormatBudgetPlan(plan);
  std::fputs(text.c_str(), stdout);
  bool over = plan.exhaustion_after_s() > 0 ||
              (plan.has_hold() && plan.hold().connections() > plan.hold().capacity());
  return over ? kExitFailed : kExitOk;
}

}  // namespace churnlab
