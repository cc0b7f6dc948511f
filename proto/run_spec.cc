#include "proto/run_spec.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "proto/message_json.h"
#include "proto/strict_json.h"
#include "proto/threshold.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int kMaxTargets = 1000;
constexpr int kMaxListItems = 10000;
constexpr int kMaxThresholds = 64;
constexpr size_t kMaxNameLength = 256;
constexpr size_t kMaxAgentNameLength = 128;
constexpr size_t kMaxAddressLength = 64;  // "[v6]:port" is at most 53
constexpr size_t kMaxTargetLength = 260;  // "host:port" with a 253-byte DNS name
constexpr size_t kMaxThresholdLength = 256;
constexpr int kMaxTags = 32;
constexpr size_t kMaxTagKeyLength = 64;
constexpr size_t kMaxTagValueLength = 256;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// Count first, then each item's length: an oversized list or item is refused before any of it
// is parsed, and the error does not echo megabytes back.
absl::Status CheckList(absl::string_view field,
                       const google::protobuf::RepeatedPtrField<std::string>& items, int max_items,
                       size_t max_length) {
  if (items.size() > max_items) {
    return Invalid(field, absl::StrCat(items.size(), " items; at most ", max_items));
  }
  for (const std::string& item : items) {
    if (item.size() > max_length) {
      return Invalid(field,
                     absl::StrCat("an item of ", item.size(), " bytes; at most ", max_length));
    }
  }
  return absl::OkStatus();
}

// The sizes of everything a client sends in a spec, before anything looks inside.
absl::Status ValidateSizes(const v1::RunSpec& spec) {
  if (spec.ByteSizeLong() > kMaxSpecBytes) {
    return Invalid("spec", absl::StrCat(spec.ByteSizeLong(), " bytes encoded; at most ",
                                        kMaxSpecBytes, " (1 MiB)"));
  }
  if (spec.name().size() > kMaxNameLength) {
    return Invalid("name", absl::StrCat(spec.name().size(), " bytes; at most ", kMaxNameLength));
  }
  RETURN_IF_ERROR(CheckList("targets", spec.targets(), kMaxTargets, kMaxTargetLength));
  RETURN_IF_ERROR(CheckList("agent_names", spec.agent_names(), kMaxListItems, kMaxAgentNameLength));
  RETURN_IF_ERROR(CheckList("source_ips", spec.source_ips(), kMaxListItems, kMaxAddressLength));
  RETURN_IF_ERROR(
      CheckList("exclude_source_ips", spec.exclude_source_ips(), kMaxListItems, kMaxAddressLength));
  RETURN_IF_ERROR(CheckList("thresholds", spec.thresholds(), kMaxThresholds, kMaxThresholdLength));
  if (spec.tags_size() > kMaxTags) {
    return Invalid("tags", absl::StrCat(spec.tags_size(), " tags; at most ", kMaxTags));
  }
  for (const auto& [key, value] : spec.tags()) RETURN_IF_ERROR(ValidateTag(key, value));
  return absl::OkStatus();
}

absl::Status ValidateSelection(const v1::RunSpec& spec) {
  // A lost agent's share is a rate; the closed model's concurrency is not handed on.
  if (spec.rebalance() && spec.rate() <= 0) {
    return Invalid("rebalance",
                   "needs the open model (rate); a closed-model run cannot hand on "
                   "a lost agent's concurrency");
  }
  if (spec.rebalance() && spec.stages_size() > 0) {
    return Invalid("rebalance", "cannot hand on a share of a staged rate; drop one of them");
  }
  if (spec.agents() < 0) return Invalid("agents", absl::StrCat(spec.agents(), " is negative"));
  if (spec.source_ips_per_agent() < 0) {
    return Invalid("source_ips_per_agent",
                   absl::StrCat(spec.source_ips_per_agent(), " is negative"));
  }
  for (const std::string& name : spec.agent_names()) {
    if (name.empty()) return Invalid("agent_names", "an empty name");
  }
  for (const std::string& ip : spec.source_ips()) {
    absl::StatusOr<SocketAddress> parsed = SocketAddress::ParseIp(ip);
    if (!parsed.ok()) return Invalid("source_ips", parsed.status().message());
  }
  for (const std::string& ip : spec.exclude_source_ips()) {
    absl::StatusOr<SocketAddress> parsed = SocketAddress::ParseIp(ip);
    if (!parsed.ok()) return Invalid("exclude_source_ips", parsed.status().message());
  }
  absl::StatusOr<BindMode> bind = ToEngine(spec.bind_mode());
  if (bind.ok() && !BindsSourceIp(*bind) &&
      (spec.source_ips_size() > 0 || spec.source_ips_per_agent() > 0)) {
    return Invalid("bind_mode", absl::StrCat(BindModeName(*bind),
                                             " binds no source IP; drop source_ips or use "
                                             "no-port, bind or engine"));
  }
  for (const std::string& expression : spec.thresholds()) {
    RETURN_IF_ERROR(ParseThreshold(expression).status());
  }
  return absl::OkStatus();
}

// A value the enum does not name (an unset zero, or a number from a newer peer), for errors.
absl::Status Unnamed(const google::protobuf::EnumDescriptor& type, int number) {
  return absl::InvalidArgumentError(
      absl::StrCat(number == 0 ? "unset" : absl::StrCat(number, " is not a known value"),
                   "; one of ", EnumWords(type)));
}

}  // namespace

absl::Status ValidateTag(absl::string_view key, absl::string_view value) {
  // Keys go into the run store's JSON paths and the tag filter's "key=value": a small alphabet
  // keeps them plain there.
  if (key.empty() || key.size() > kMaxTagKeyLength ||
      !std::all_of(key.begin(), key.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-' || c == '/';
      })) {
    return Invalid("tags", absl::StrCat("key '", key.substr(0, kMaxTagKeyLength),
                                        "': 1 to 64 of A-Z a-z 0-9 _ . - /"));
  }
  if (value.size() > kMaxTagValueLength) {
    return Invalid("tags", absl::StrCat(key, ": a value of ", value.size(), " bytes; at most ",
                                        kMaxTagValueLength));
  }
  if (std::any_of(value.begin(), value.end(),
                  [](char c) { return absl::ascii_iscntrl(static_cast<unsigned char>(c)); })) {
    return Invalid("tags", absl::StrCat(key, ": a control character in the value"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<std::string, std::string>> ParseTag(absl::string_view key_eq_value) {
  const size_t eq = key_eq_value.find('=');
  if (eq == absl::string_view::npos) {
    return Invalid("tags", absl::StrCat("'", key_eq_value.substr(0, kMaxTagKeyLength),
                                        "': expected key=value"));
  }
  absl::string_view key = key_eq_value.substr(0, eq);
  absl::string_view value = key_eq_value.substr(eq + 1);
  RETURN_IF_ERROR(ValidateTag(key, value));
  return std::pair<std::string, std::string>(key, value);
}

absl::StatusOr<Protocol> ToEngine(v1::Protocol protocol) {
  switch (protocol) {
    case v1::PROTOCOL_COUNTER:
      return Protocol::kCounter;
    case v1::PROTOCOL_HTTP:
      return Protocol::kHttp;
    case v1::PROTOCOL_TLS:
      return Protocol::kTls;
    case v1::PROTOCOL_HTTPS:
      return Protocol::kHttps;
    default:
      return Unnamed(*v1::Protocol_descriptor(), protocol);
  }
}

absl::StatusOr<ClosePolicy> ToEngine(v1::ClosePolicy policy) {
  switch (policy) {
    case v1::CLOSE_POLICY_CLIENT_FIN:
      return ClosePolicy::kClientFin;
    case v1::CLOSE_POLICY_RST:
      return ClosePolicy::kRst;
    case v1::CLOSE_POLICY_SERVER_FIN:
      return ClosePolicy::kServerFin;
    default:
      return Unnamed(*v1::ClosePolicy_descriptor(), policy);
  }
}

absl::StatusOr<BindMode> ToEngine(v1::BindMode mode) {
  switch (mode) {
    case v1::BIND_MODE_NONE:
      return BindMode::kNone;
    case v1::BIND_MODE_NO_PORT:
      return BindMode::kNoPort;
    case v1::BIND_MODE_BIND:
      return BindMode::kBind;
    case v1::BIND_MODE_BIND_ANY:
      return BindMode::kBindAny;
    case v1::BIND_MODE_ENGINE:
      return BindMode::kEngine;
    default:
      return Unnamed(*v1::BindMode_descriptor(), mode);
  }
}

absl::Duration ToAbsl(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

google::protobuf::Duration ToProto(absl::Duration d) {
  return TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
}

v1::Protocol ToProto(Protocol protocol) {
  switch (protocol) {
    case Protocol::kCounter:
      return v1::PROTOCOL_COUNTER;
    case Protocol::kHttp:
      return v1::PROTOCOL_HTTP;
    case Protocol::kTls:
      return v1::PROTOCOL_TLS;
    case Protocol::kHttps:
      return v1::PROTOCOL_HTTPS;
  }
  return v1::PROTOCOL_UNSPECIFIED;
}

v1::ClosePolicy ToProto(ClosePolicy policy) {
  switch (policy) {
    case ClosePolicy::kClientFin:
      return v1::CLOSE_POLICY_CLIENT_FIN;
    case ClosePolicy::kRst:
      return v1::CLOSE_POLICY_RST;
    case ClosePolicy::kServerFin:
      return v1::CLOSE_POLICY_SERVER_FIN;
  }
  return v1::CLOSE_POLICY_UNSPECIFIED;
}

v1::BindMode ToProto(BindMode mode) {
  switch (mode) {
    case BindMode::kNone:
      return v1::BIND_MODE_NONE;
    case BindMode::kNoPort:
      return v1::BIND_MODE_NO_PORT;
    case BindMode::kBind:
      return v1::BIND_MODE_BIND;
    case BindMode::kBindAny:
      return v1::BIND_MODE_BIND_ANY;
    case BindMode::kEngine:
      return v1::BIND_MODE_ENGINE;
  }
  return v1::BIND_MODE_UNSPECIFIED;
}

absl::StatusOr<v1::RunSpec> ParseRunSpecJson(absl::string_view json) {
  if (json.size() > kMaxSpecJsonBytes) {
    return Invalid("spec", absl::StrCat(json.size(), " bytes of JSON; at most ", kMaxSpecJsonBytes,
                                        " (1 MiB)"));
  }
  // Protobuf's parser takes the last of duplicate keys and flattens nested lists.
  RETURN_IF_ERROR(CheckJsonShape(json, *v1::RunSpec::descriptor()));
  v1::RunSpec spec;
  absl::Status status = ParseMessageJson(json, &spec);
  if (!status.ok()) return absl::InvalidArgumentError(absl::StrCat("spec: ", status.message()));
  return spec;
}

std::string RunSpecToJson(const v1::RunSpec& spec) { return MessageToJson(spec); }

double RequestedRateAt(const v1::RunSpec& spec, double t_s) {
  auto seconds = [](const google::protobuf::Duration& d) {
    return TimeUtil::DurationToNanoseconds(d) / 1e9;
  };
  if (spec.rate() <= 0 || t_s < 0 || t_s > seconds(spec.duration())) return 0;
  double start = 0;
  double from = 0;  // the rate at the stage's start: the ramp and the first stage begin at 0
  for (const v1::Stage& stage : spec.stages()) {
    double length = seconds(stage.duration());
    if (t_s < start + length) return from + (stage.rate() - from) * (t_s - start) / length;
    start += length;
    from = stage.rate();
  }
  if (spec.stages_size() > 0) return from;
  double ramp = seconds(spec.ramp_up());
  return t_s < ramp ? spec.rate() * t_s / ramp : spec.rate();
}

void ApplyRunSpecDefaults(v1::RunSpec* spec) {
  EngineParams defaults;
  if (spec->protocol() == v1::PROTOCOL_UNSPECIFIED) spec->set_protocol(v1::PROTOCOL_COUNTER);
  if (spec->close_policy() == v1::CLOSE_POLICY_UNSPECIFIED) {
    spec->set_close_policy(v1::CLOSE_POLICY_CLIENT_FIN);
  }
  if (spec->bind_mode() == v1::BIND_MODE_UNSPECIFIED) spec->set_bind_mode(v1::BIND_MODE_NO_PORT);
  if (!spec->has_requests_per_connection()) spec->set_requests_per_connection(1);
  if (spec->protocol() == v1::PROTOCOL_HTTP || spec->protocol() == v1::PROTOCOL_HTTPS) {
    v1::HttpRequest* request = spec->mutable_request();
    if (request->method().empty()) request->set_method(defaults.request.method);
    if (request->path().empty()) request->set_path(defaults.request.path);
  }
  if (!spec->has_connect_timeout())
    *spec->mutable_connect_timeout() = ToProto(defaults.connect_timeout);
  if (!spec->has_io_timeout()) *spec->mutable_io_timeout() = ToProto(defaults.io_timeout);
  const bool has_name =
      std::any_of(spec->targets().begin(), spec->targets().end(), [](const std::string& t) {
        return !SocketAddress::ParseIpPort(t).ok() && ParseNamedTarget(t).ok();
      });
  if (has_name && !spec->has_resolve_interval()) {
    *spec->mutable_resolve_interval() = ToProto(kDefaultResolveInterval);
  }
  if (spec->max_in_flight() == 0) spec->set_max_in_flight(defaults.max_in_flight);
  // Stages say the run's length and its peak; `rate` and `duration`, when given, must agree.
  if (spec->stages_size() > 0) {
    int64_t nanos = 0;
    double peak = 0;
    for (const v1::Stage& stage : spec->stages()) {
      nanos += TimeUtil::DurationToNanoseconds(stage.duration());
      peak = std::max(peak, stage.rate());
    }
    if (!spec->has_duration()) *spec->mutable_duration() = TimeUtil::NanosecondsToDuration(nanos);
    if (spec->rate() == 0 && spec->concurrency() == 0) spec->set_rate(peak);
  }
}

namespace {

// The request, the expected status and TLS, as the engine takes them; validated with the rest.
void ExchangeFromSpec(const v1::RunSpec& spec, EngineParams* p) {
  if (spec.has_request()) {
    const v1::HttpRequest& r = spec.request();
    if (!r.method().empty()) p->request.method = r.method();
    if (!r.path().empty()) p->request.path = r.path();
    p->request.headers.assign(r.headers().begin(), r.headers().end());
    p->request.body = r.body();
    p->expect_status = r.expect_status();
  }
  p->tls.ca_pem = spec.tls().target_ca_pem();
  p->tls.insecure = spec.tls().insecure();
  p->tls.resumption = spec.tls().resumption();
}

}  // namespace

absl::StatusOr<EngineParams> EngineParamsFromSpec(const v1::RunSpec& spec) {
  EngineParams p;
  if (spec.targets_size() == 0) {
    return Invalid("targets", "at least one ip:port or host:port is required");
  }
  if (spec.targets_size() > kMaxTargets) {
    return Invalid("targets", absl::StrCat(spec.targets_size(), " targets; at most ", kMaxTargets));
  }
  for (const std::string& target : spec.targets()) {
    absl::StatusOr<SocketAddress> parsed = SocketAddress::ParseIpPort(target);
    if (parsed.ok()) {
      p.targets.push_back(*parsed);
      continue;
    }
    // A host name is resolved where the engine runs (ResolveEngineTargets).
    absl::StatusOr<NamedTarget> named = ParseNamedTarget(target);
    if (!named.ok()) return Invalid("targets", named.status().message());
    p.named_targets.push_back(*named);
  }
  absl::StatusOr<Protocol> protocol = ToEngine(spec.protocol());
  if (!protocol.ok()) return Invalid("protocol", protocol.status().message());
  p.protocol = *protocol;
  absl::StatusOr<ClosePolicy> close = ToEngine(spec.close_policy());
  if (!close.ok()) return Invalid("close_policy", close.status().message());
  p.close_policy = *close;
  absl::StatusOr<BindMode> bind = ToEngine(spec.bind_mode());
  if (!bind.ok()) return Invalid("bind_mode", bind.status().message());
  p.bind_mode = *bind;
  if (!spec.has_duration()) return Invalid("duration", "required (like \"30s\")");
  p.rate = spec.rate();
  p.concurrency = spec.concurrency();
  p.duration = ToAbsl(spec.duration());
  p.ramp_up = ToAbsl(spec.ramp_up());
  for (const v1::Stage& stage : spec.stages()) {
    p.stages.push_back(RateStage{ToAbsl(stage.duration()), stage.rate()});
  }
  p.requests_per_connection = spec.requests_per_connection();
  ExchangeFromSpec(spec, &p);
  p.connect_timeout = ToAbsl(spec.connect_timeout());
  p.io_timeout = ToAbsl(spec.io_timeout());
  p.hold = ToAbsl(spec.hold());
  p.resolve_interval = ToAbsl(spec.resolve_interval());
  p.max_in_flight = spec.max_in_flight();
  // Source IPs come with the shard; validate the rest as if the kernel picked them.
  BindMode chosen = p.bind_mode;
  p.bind_mode = BindMode::kNone;
  RETURN_IF_ERROR(ValidateEngineParams(p));
  p.bind_mode = chosen;
  return p;
}

bool BindsSourceIps(v1::BindMode mode) {
  absl::StatusOr<BindMode> engine = ToEngine(mode);
  return engine.ok() && BindsSourceIp(*engine);
}

absl::Status ValidateRunSpec(const v1::RunSpec& spec) {
  RETURN_IF_ERROR(ValidateSizes(spec));
  // Checked here, not left to the engine's own validation: the spec is the user's contract.
  if (spec.rate() != 0 && spec.concurrency() != 0) {
    return Invalid("rate, concurrency",
                   "set exactly one: rate (new connections/s, the open model) or concurrency "
                   "(connections in flight, the closed model), not both");
  }
  RETURN_IF_ERROR(EngineParamsFromSpec(spec).status());
  return ValidateSelection(spec);
}

}  // namespace churnlab

namespace churnlab {

absl::StatusOr<EngineParams> EngineParamsFromShard(const v1::Shard& shard) {
  v1::RunSpec spec = shard.spec();
  // The shard's part of a staged profile: every stage in the proportion of its share of the peak.
  double share = spec.rate() > 0 ? shard.rate() / spec.rate() : 0;
  for (v1::Stage& stage : *spec.mutable_stages()) stage.set_rate(stage.rate() * share);
  if (shard.concurrency() < 0) return Invalid("concurrency", "is negative");
  if (shard.max_in_flight() < 0) return Invalid("max_in_flight", "is negative");
  spec.set_rate(shard.rate());
  spec.set_concurrency(shard.concurrency());
  if (shard.max_in_flight() > 0) spec.set_max_in_flight(shard.max_in_flight());
  ASSIGN_OR_RETURN(EngineParams params, EngineParamsFromSpec(spec));
  for (const std::string& ip : shard.source_ips()) {
    absl::StatusOr<SocketAddress> parsed = SocketAddress::ParseIp(ip);
    if (!parsed.ok()) return Invalid("source_ips", parsed.status().message());
    params.source_ips.push_back(*parsed);
  }
  if (absl::Status s = ValidateEngineParams(params); !s.ok()) return s;
  return params;
}

}  // namespace churnlab
