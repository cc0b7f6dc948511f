#include "common/engine_params.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"
#include "common/status_macros.h"

namespace churnlab {

absl::string_view BindModeName(BindMode mode) {
  switch (mode) {
    case BindMode::kNone:
      return "none";
    case BindMode::kNoPort:
      return "no-port";
    case BindMode::kBind:
      return "bind";
    case BindMode::kBindAny:
      return "bind-any";
    case BindMode::kEngine:
      return "engine";
  }
  return "unknown";
}

bool BindsSourceIp(BindMode mode) {
  return mode == BindMode::kNoPort || mode == BindMode::kBind || mode == BindMode::kEngine;
}

bool BindReservesPort(BindMode mode) {
  return mode == BindMode::kBind || mode == BindMode::kBindAny;
}

absl::string_view ClosePolicyName(ClosePolicy policy) {
  switch (policy) {
    case ClosePolicy::kClientFin:
      return "client-fin";
    case ClosePolicy::kRst:
      return "rst";
    case ClosePolicy::kServerFin:
      return "server-fin";
  }
  return "unknown";
}

absl::StatusOr<BindMode> ParseBindMode(absl::string_view name) {
  for (BindMode mode : {BindMode::kNone, BindMode::kNoPort, BindMode::kBind, BindMode::kBindAny,
                        BindMode::kEngine}) {
    if (name == BindModeName(mode)) return mode;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown bind mode '", name, "' (expected none, no-port, bind, bind-any or engine)"));
}

absl::StatusOr<ClosePolicy> ParseClosePolicy(absl::string_view name) {
  for (ClosePolicy policy : {ClosePolicy::kClientFin, ClosePolicy::kRst, ClosePolicy::kServerFin}) {
    if (name == ClosePolicyName(policy)) return policy;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown close policy '", name, "' (expected client-fin, rst or server-fin)"));
}

namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status ValidateAddresses(const EngineParams& p) {
  if (p.targets.empty() && p.named_targets.empty()) {
    return Invalid("targets", "at least one ip:port or host:port is required");
  }
  if (p.targets.size() > kMaxDestinations) {
    return Invalid("targets",
                   absl::StrCat(p.targets.size(), " destinations; at most ", kMaxDestinations));
  }
  for (const SocketAddress& target : p.targets) {
    if (target.port() == 0) {
      return Invalid("targets", absl::StrCat(target.ToString(), " has port 0"));
    }
    if (target.family() != p.targets.front().family()) {
      return Invalid("targets", "IPv4 and IPv6 targets cannot be mixed in one run");
    }
  }
  if (!BindsSourceIp(p.bind_mode) && !p.source_ips.empty()) {
    return Invalid("source_ips",
                   absl::StrCat("bind mode ", BindModeName(p.bind_mode),
                                " binds no source IP; use no-port or bind with them"));
  }
  if (BindsSourceIp(p.bind_mode) && p.source_ips.empty()) {
    return Invalid("source_ips", absl::StrCat("bind mode ", BindModeName(p.bind_mode),
                                              " needs at least one source IP"));
  }
  for (const SocketAddress& ip : p.source_ips) {
    if (!p.targets.empty() && ip.family() != p.targets.front().family()) {
      return Invalid("source_ips", absl::StrCat(ip.IpString(), " is not of the targets' family"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateStages(const EngineParams& p) {
  if (p.stages.empty()) return absl::OkStatus();
  if (p.rate <= 0) return Invalid("stages", "apply to the open model (rate) only");
  if (p.ramp_up != absl::ZeroDuration()) {
    return Invalid("ramp_up", "with stages, make the ramp the first stage");
  }
  if (p.stages.size() > kMaxStages) {
    return Invalid("stages", absl::StrCat(p.stages.size(), " stages; at most ", kMaxStages));
  }
  absl::Duration sum;
  double peak = 0;
  for (size_t i = 0; i < p.stages.size(); ++i) {
    const RateStage& stage = p.stages[i];
    if (stage.duration <= absl::ZeroDuration()) {
      return Invalid("stages",
                     absl::StrCat("stage ", i + 1, ": duration ",
                                  absl::FormatDuration(stage.duration), " must be positive"));
    }
    if (!(stage.rate >= 0 && stage.rate <= kMaxRate)) {
      return Invalid("stages", absl::StrFormat("stage %d: rate %g is not in [0, %.0f]", i + 1,
                                               stage.rate, kMaxRate));
    }
    sum += stage.duration;
    peak = std::max(peak, stage.rate);
  }
  if (sum != p.duration) {
    return Invalid("duration", absl::StrCat(absl::FormatDuration(p.duration),
                                            ", but the stages last ", absl::FormatDuration(sum)));
  }
  if (std::abs(peak - p.rate) > 1e-9 * peak) {
    return Invalid("rate",
                   absl::StrFormat("%g, but with stages the rate is their peak, %g", p.rate, peak));
  }
  return absl::OkStatus();
}

absl::Status ValidateLoad(const EngineParams& p) {
  bool open = p.rate != 0;
  bool closed = p.concurrency != 0;
  if (open == closed) return Invalid("rate", "set exactly one of rate and concurrency");
  if (open && !IsValidRate(p.rate)) {
    return Invalid("rate",
                   absl::StrFormat("%g is not in (0, %.0f] connections/s", p.rate, kMaxRate));
  }
  if (closed && (p.concurrency < 0 || p.concurrency > kMaxConcurrency)) {
    return Invalid("concurrency", absl::StrCat(p.concurrency, " is not in 1..", kMaxConcurrency));
  }
  if (p.duration <= absl::ZeroDuration() || p.duration > kMaxDuration) {
    return Invalid("duration",
                   absl::StrCat(absl::FormatDuration(p.duration), " is not in (0, 24h]"));
  }
  if (p.ramp_up < absl::ZeroDuration() || p.ramp_up > p.duration) {
    return Invalid("ramp_up", absl::StrCat(absl::FormatDuration(p.ramp_up),
                                           " must be between 0 and the duration"));
  }
  if (closed && p.ramp_up != absl::ZeroDuration()) {
    return Invalid("ramp_up", "applies to the open model (rate) only");
  }
  if (open && (p.max_in_flight < 1 || p.max_in_flight > kMaxConcurrency)) {
    return Invalid("max_in_flight",
                   absl::StrCat(p.max_in_flight, " is not in 1..", kMaxConcurrency));
  }
  if (p.max_connections < 0) {
    return Invalid("max_connections", absl::StrCat(p.max_connections, " is negative"));
  }
  if (!(p.max_rate >= 0 && p.max_rate <= kMaxRate)) {
    return Invalid("max_rate", absl::StrFormat("%g is not in [0, %.0f]", p.max_rate, kMaxRate));
  }
  if (open && p.max_rate > 0 && p.rate > p.max_rate) {
    return Invalid("rate",
                   absl::StrFormat("%g connections/s is above the cap of %g", p.rate, p.max_rate));
  }
  return ValidateStages(p);
}

absl::Status ValidateTls(const EngineParams& p) {
  bool has_ca = !p.tls.ca_file.empty() || !p.tls.ca_pem.empty();
  if (!UsesTls(p.protocol)) {
    if (has_ca || p.tls.insecure || p.tls.resumption != 0) {
      return Invalid("tls", absl::StrCat("target_ca, insecure and tls_resumption apply to "
                                         "protocols tls and https, not ",
                                         ProtocolName(p.protocol)));
    }
    return absl::OkStatus();
  }
  if (!has_ca && !p.tls.insecure) {
    return Invalid("target_ca",
                   "TLS needs a CA file to verify the server against (--target-ca=FILE), or "
                   "--insecure to take any certificate unverified");
  }
  if (has_ca && p.tls.insecure) {
    return Invalid("insecure", "give either a CA file or insecure, not both");
  }
  if (p.tls.ca_pem.size() > kMaxCaPemBytes) {
    return Invalid("target_ca",
                   absl::StrCat(p.tls.ca_pem.size(), " bytes of PEM; at most ", kMaxCaPemBytes));
  }
  if (!(p.tls.resumption >= 0 && p.tls.resumption <= 1)) {
    return Invalid("tls_resumption", absl::StrFormat("%g is not in [0, 1]", p.tls.resumption));
  }
  return absl::OkStatus();
}

// What each connection does after its handshake: the user's request, the status it expects,
// connect-only's limits.
absl::Status ValidateExchange(const EngineParams& p) {
  RETURN_IF_ERROR(ValidateTls(p));
  if (!p.target_names.empty() && p.target_names.size() != p.targets.size()) {
    return Invalid("targets", "a name for every target, or none");
  }
  if (SpeaksHttp(p.protocol)) {
    RETURN_IF_ERROR(ValidateHttpRequestSpec(p.request));
  } else if (p.request.method != "GET" || p.request.path != "/" || !p.request.headers.empty() ||
             !p.request.body.empty() || p.expect_status != 0) {
    return Invalid("request", absl::StrCat("method, path, headers, body and expect_status apply "
                                           "to protocols http and https, not ",
                                           ProtocolName(p.protocol)));
  }
  if (p.expect_status != 0 && (p.expect_status < 100 || p.expect_status > 599)) {
    return Invalid("expect_status", absl::StrCat(p.expect_status, " is not in 100..599"));
  }
  if (p.requests_per_connection == 0 && p.close_policy == ClosePolicy::kServerFin) {
    return Invalid("close_policy",
                   "server-fin asks the server to close in the last request; with "
                   "requests_per_connection 0 there is none (use client-fin or rst)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePortPlan(const EngineParams& p) {
  if (p.bind_mode != BindMode::kEngine) return absl::OkStatus();
  auto within = [](absl::Duration d) { return d >= absl::ZeroDuration() && d <= kMaxTimeout; };
  if (p.ports.low < 1 || p.ports.high < p.ports.low || !within(p.ports.reuse_after) ||
      !within(p.ports.time_wait_left)) {
    return Invalid(
        "bind_mode",
        absl::StrCat("engine: ports ", p.ports.low, "-", p.ports.high,
                     " to pick from, taken again after ", absl::FormatDuration(p.ports.reuse_after),
                     " (an earlier TIME_WAIT's ", absl::FormatDuration(p.ports.time_wait_left),
                     "), are not a range within 1-65535 and 0-1h"));
  }
  return absl::OkStatus();
}

absl::Status ValidateEngineParams(const EngineParams& p) {
  if (absl::Status s = ValidateAddresses(p); !s.ok()) return s;
  if (absl::Status s = ValidateLoad(p); !s.ok()) return s;
  if (p.requests_per_connection < 0 || p.requests_per_connection > kMaxRequestsPerConnection) {
    return Invalid("requests_per_connection",
                   absl::StrCat(p.requests_per_connection, " is not in 0..",
                                kMaxRequestsPerConnection, " (0 = connect, then close)"));
  }
  RETURN_IF_ERROR(ValidateExchange(p));
  if (p.connect_timeout <= absl::ZeroDuration() || p.connect_timeout > kMaxTimeout) {
    return Invalid("connect_timeout",
                   absl::StrCat(absl::FormatDuration(p.connect_timeout), " is not in (0, 1h]"));
  }
  if (p.resolve_interval < absl::ZeroDuration() ||
      (p.resolve_interval > absl::ZeroDuration() && p.resolve_interval < kMinResolveInterval) ||
      p.resolve_interval > kMaxTimeout) {
    return Invalid("resolve_interval", absl::StrCat(absl::FormatDuration(p.resolve_interval),
                                                    " is not 0 (once) or in [1s, 1h]"));
  }
  if (p.io_timeout <= absl::ZeroDuration() || p.io_timeout > kMaxTimeout) {
    return Invalid("io_timeout",
                   absl::StrCat(absl::FormatDuration(p.io_timeout), " is not in (0, 1h]"));
  }
  if (p.hold < absl::ZeroDuration() || p.hold > kMaxDuration) {
    return Invalid("hold", absl::StrCat(absl::FormatDuration(p.hold), " is not in [0, 24h]"));
  }
  // What in-flight connections may take after the end bounds the run as much as its duration.
  if (absl::Duration timeouts = DrainBound(p) - p.hold; timeouts > kMaxDuration) {
    return Invalid("io_timeout", absl::StrCat("connect_timeout + io_timeout x "
                                              "(requests_per_connection + 1, + 1 with TLS), the "
                                              "longest a connection may take, is ",
                                              absl::FormatDuration(timeouts), "; at most 24h"));
  }
  if (p.hold > absl::ZeroDuration() && p.close_policy == ClosePolicy::kServerFin) {
    return Invalid("hold",
                   "applies to close policies client-fin and rst: under server-fin the server "
                   "closes right after the last response");
  }
  if (p.threads < 1 || p.threads > kMaxThreads) {
    return Invalid("threads", absl::StrCat(p.threads, " is not in 1..", kMaxThreads));
  }
  int64_t load = p.rate != 0 ? p.max_in_flight : p.concurrency;
  if (load < p.threads) {
    return Invalid("threads", absl::StrCat(p.threads, " threads cannot share ", load,
                                           " connections in flight"));
  }
  return absl::OkStatus();
}

absl::Status ResolveEngineTargets(EngineParams* p, std::vector<Resolution>* resolved) {
  if (p->named_targets.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(*resolved, ResolveTargets(p->named_targets, p->targets, p->source_ips));
  p->target_names.resize(p->targets.size());
  for (const Resolution& r : *resolved) {
    for (const SocketAddress& a : r.addresses) {
      p->targets.push_back(a);
      p->target_names.push_back(r.target.host);
    }
  }
  p->named_targets.clear();
  const int family = p->targets.front().family();
  std::erase_if(p->source_ips, [family](const SocketAddress& ip) { return ip.family() != family; });
  return ValidateAddresses(*p);
}

bool UpdateFits(const DestinationUpdate& u, size_t table, int family) {
  const size_t size = table + u.added.size();
  return u.first == table && size <= kMaxDestinations && u.added_names.size() == u.added.size() &&
         !u.active.empty() &&
         std::all_of(
             u.added.begin(), u.added.end(),
             [&](const SocketAddress& a) { return a.family() == family && a.port() != 0; }) &&
         std::all_of(u.active.begin(), u.active.end(), [&](uint32_t i) { return i < size; });
}

absl::Duration DrainBound(const EngineParams& p) {
  int64_t waits = p.requests_per_connection + 1 + (UsesTls(p.protocol) ? 1 : 0);
  return p.connect_timeout + p.io_timeout * waits + p.hold;
}

absl::StatusOr<RateStage> ParseRateStage(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  RateStage stage;
  if (parts.size() != 2 || !absl::ParseDuration(parts[0], &stage.duration) ||
      !ParseFiniteDouble(parts[1], &stage.rate)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not DURATION:RATE like 10s:100"));
  }
  return stage;
}

std::string RateStageText(const RateStage& stage) {
  return absl::StrFormat("%s:%.17g", absl::FormatDuration(stage.duration), stage.rate);
}

}  // namespace churnlab
