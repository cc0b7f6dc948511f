#include "proto/hello.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/engine_params.h"
#include "common/net_address.h"
#include "common/target_names.h"
#include "proto/telemetry_codec.h"

namespace churnlab {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("hello.", field, ": ", why));
}

absl::Status CheckLength(absl::string_view field, absl::string_view value, size_t max) {
  if (value.size() <= max) return absl::OkStatus();
  return Invalid(field, absl::StrCat(value.size(), " bytes; at most ", max));
}

bool HasControlCharacters(absl::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Count first, then each item: a list over its limit costs nothing more to refuse.
// The longest valid item ("[v6]:port", a v6 CIDR) is under 64 bytes, a host name 253.
template <typename Parse>
absl::Status CheckList(absl::string_view field,
                       const google::protobuf::RepeatedPtrField<std::string>& items, int max,
                       Parse parse, size_t max_bytes = 64) {
  if (items.size() > max) {
    return Invalid(field, absl::StrCat(items.size(), " items; at most ", max));
  }
  for (const std::string& item : items) {
    if (item.size() > max_bytes) {
      return Invalid(field,
                     absl::StrCat("an item of ", item.size(), " bytes; at most ", max_bytes));
    }
    if (absl::Status s = parse(item).status(); !s.ok()) return Invalid(field, s.message());
  }
  return absl::OkStatus();
}

absl::Status ValidateStrings(const v1::Hello& hello) {
  if (hello.name().empty()) return Invalid("name", "empty; every agent needs a name");
  if (absl::Status s = CheckLength("name", hello.name(), kMaxAgentNameLength); !s.ok()) return s;
  if (HasControlCharacters(hello.name())) return Invalid("name", "holds control characters");
  if (absl::Status s = CheckLength("host", hello.host(), kMaxHostLength); !s.ok()) return s;
  if (HasControlCharacters(hello.host())) return Invalid("host", "holds control characters");
  if (absl::Status s = CheckLength("version", hello.version(), kMaxVersionLength); !s.ok()) {
    return s;
  }
  return CheckLength("kernel_id", hello.kernel_id(), kMaxKernelIdLength);
}

}  // namespace

absl::Status ValidateHello(const v1::Hello& hello) {
  if (absl::Status s = ValidateStrings(hello); !s.ok()) return s;
  if (absl::Status s =
          CheckList("source_ips", hello.source_ips(), kMaxHelloSourceIps, SocketAddress::ParseIp);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckList("allow_targets", hello.allow_targets(), kMaxAllowTargets, ParseAllowList, 253);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckList("listen_addresses", hello.listen_addresses(), kMaxListenAddresses,
                                 SocketAddress::ParseIpPort);
      !s.ok()) {
    return s;
  }
  if (hello.sysctls_size() > kMaxSysctls) {
    return Invalid("sysctls",
                   absl::StrCat(hello.sysctls_size(), " entries; at most ", kMaxSysctls));
  }
  for (const auto& [key, value] : hello.sysctls()) {
    if (key.size() > kMaxSysctlKeyLength || value.size() > kMaxSysctlValueLength) {
      return Invalid("sysctls", absl::StrCat("an entry of ", key.size(), "+", value.size(),
                                             " bytes; keys at most ", kMaxSysctlKeyLength,
                                             ", values at most ", kMaxSysctlValueLength));
    }
  }
  const v1::PortRange& ports = hello.port_range();
  if (ports.low() < 0 || ports.high() > 65535 || ports.low() > ports.high()) {
    return Invalid("port_range",
                   absl::StrCat(ports.low(), "-", ports.high(), " is not a range within 0-65535"));
  }
  if (!std::isfinite(hello.max_rate()) || hello.max_rate() < 0 || hello.max_rate() > kMaxRate) {
    return Invalid("max_rate", absl::StrCat(hello.max_rate(), " is not in 0..", kMaxRate));
  }
  if (hello.max_in_flight() < 0 || hello.max_in_flight() > kMaxAgentInFlight) {
    return Invalid("max_in_flight",
                   absl::StrCat(hello.max_in_flight(), " is not in 0..", kMaxAgentInFlight));
  }
  const v1::PortsAtStart& held = hello.range_held();
  if (held.in_use() > 65536 || held.listening() > held.in_use() ||
      held.bind_taken() > held.in_use() || held.time_wait() > kMaxTelemetryCount) {
    return Invalid("range_held",
                   absl::StrCat(held.in_use(), " ports in use, ", held.listening(), " listening, ",
                                held.bind_taken(), " taken by bind(), ", held.time_wait(),
                                " in TIME_WAIT: not counts a census can give"));
  }
  return absl::OkStatus();
}

namespace {

template <typename Parse>
std::vector<SocketAddress> ParsedAll(const google::protobuf::RepeatedPtrField<std::string>& texts,
                                     Parse parse) {
  std::vector<SocketAddress> out;
  out.reserve(texts.size());
  for (const std::string& text : texts) {
    absl::StatusOr<SocketAddress> address = parse(text);
    if (address.ok()) out.push_back(*address);  // ValidateHello refused any other
  }
  return out;
}

}  // namespace

std::vector<SocketAddress> SourceAddressesOf(const v1::Hello& hello) {
  return ParsedAll(hello.source_ips(), SocketAddress::ParseIp);
}

std::vector<SocketAddress> ListenAddressesOf(const v1::Hello& hello) {
  return ParsedAll(hello.listen_addresses(), SocketAddress::ParseIpPort);
}

}  // namespace churnlab
