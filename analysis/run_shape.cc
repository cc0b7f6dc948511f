#include "analysis/run_shape.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "proto/run_spec.h"

namespace churnlab::analysis {

RunShape ShapeOf(const v1::RunSpec& spec) {
  RunShape shape;
  // An unset choice (a report stored before defaults) reads as the default.
  shape.close = ToEngine(spec.close_policy()).value_or(ClosePolicy::kClientFin);
  shape.bind = ToEngine(spec.bind_mode()).value_or(BindMode::kNoPort);
  shape.all_targets_loopback = spec.targets_size() > 0;
  for (const std::string& text : spec.targets()) {
    absl::StatusOr<SocketAddress> target = SocketAddress::ParseIpPort(text);
    if (!target.ok()) {
      shape.all_targets_loopback = false;
      absl::StatusOr<NamedTarget> named = ParseNamedTarget(text);
      if (named.ok()) shape.named_targets.push_back(*named);
      continue;
    }
    shape.all_targets_loopback = shape.all_targets_loopback && target->is_loopback();
    if (shape.family == AF_UNSPEC) shape.family = target->family();
    shape.targets.push_back(*target);
  }
  shape.duration_s = google::protobuf::util::TimeUtil::DurationToNanoseconds(spec.duration()) / 1e9;
  auto parse = [](const auto& texts, std::vector<SocketAddress>* out) {
    for (const std::string& text : texts) {
      if (absl::StatusOr<SocketAddress> ip = SocketAddress::ParseIp(text); ip.ok()) {
        out->push_back(*ip);
      }
    }
  };
  parse(spec.source_ips(), &shape.wanted_sources);
  parse(spec.exclude_source_ips(), &shape.excluded_sources);
  return shape;
}

std::optional<std::string> Sysctl(const v1::Hello& hello, const std::string& key) {
  auto it = hello.sysctls().find(key);
  if (it == hello.sysctls().end()) return std::nullopt;
  return it->second;
}

std::optional<int64_t> SysctlInt(const v1::Hello& hello, const std::string& key) {
  std::optional<std::string> text = Sysctl(hello, key);
  int64_t value = 0;
  if (!text.has_value() || !absl::SimpleAtoi(*text, &value)) return std::nullopt;
  return value;
}

uint64_t PortCount(const v1::Hello& hello) {
  const v1::PortRange& range = hello.port_range();
  if (range.low() <= 0 || range.high() < range.low()) return 0;
  uint64_t ports = static_cast<uint64_t>(range.high() - range.low() + 1);
  return ports - std::min<uint64_t>(hello.reserved_ports(), ports);
}

uint64_t UnusableAtStart(const ShardFacts& shard, const std::string& ip) {
  auto count = [&ip](const std::map<std::string, uint64_t>& by_ip) {
    auto it = by_ip.find(ip);
    return it == by_ip.end() ? uint64_t{0} : it->second;
  };
  const uint64_t own = count(shard.taken_at_start);
  if (!shard.range_at_start.has_value() || !shard.range_at_start->bind_taken_known()) return own;
  const uint64_t bind_taken = shard.range_at_start->bind_taken();
  // Its own ports bind() took are in both counts.
  return own + bind_taken - std::min({count(shard.bind_taken_at_start), own, bind_taken});
}

}  // namespace churnlab::analysis
