#include "analysis/run_shape.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "proto/run_spec.h"

namespace churnlab::analysis {

RunShape ShapeOf(const v1::RunSpec& spec) {
  RunShape shape;
  // An unset choice (a report stored before defaults) reads as the default.
  shape.close = ToEngine(spec.close_policy()).value_or(ClosePolicy::kClientFin);
  shape.bind_reserves_port = spec.bind_mode() == v1::BIND_MODE_BIND;
  shape.all_targets_loopback = spec.targets_size() > 0;
  for (const std::string& text : spec.targets()) {
    absl::StatusOr<SocketAddress> target = SocketAddress::ParseIpPort(text);
    if (!target.ok()) {
      shape.all_targets_loopback = false;
      continue;
    }
    shape.all_targets_loopback = shape.all_targets_loopback && target->is_loopback();
    shape.targets.push_back(*target);
  }
  shape.duration_s = google::protobuf::util::TimeUtil::DurationToNanoseconds(spec.duration()) / 1e9;
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

uint64_t ReservedPortsIn(const v1::Hello& hello, int64_t low, int64_t high) {
  std::optional<std::string> list = Sysctl(hello, "net.ipv4.ip_local_reserved_ports");
  if (!list.has_value()) return 0;
  // The kernel's bitmap, written as "8080,9000-9099"; the ranges do not overlap once written
  // back, but a peer's text may, so count each port once.
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (absl::string_view part : absl::StrSplit(*list, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> ends = absl::StrSplit(part, '-');
    int64_t a = 0;
    int64_t b = 0;
    if (!absl::SimpleAtoi(ends.first, &a)) continue;
    if (ends.second.empty()) {
      b = a;
    } else if (!absl::SimpleAtoi(ends.second, &b)) {
      continue;
    }
    a = std::max(a, low);
    b = std::min(b, high);
    if (a <= b) spans.emplace_back(a, b);
  }
  std::sort(spans.begin(), spans.end());
  uint64_t reserved = 0;
  int64_t covered = low - 1;  // the highest port counted so far
  for (auto [a, b] : spans) {
    a = std::max(a, covered + 1);
    if (a > b) continue;
    reserved += static_cast<uint64_t>(b - a + 1);
    covered = b;
  }
  return reserved;
}

uint64_t PortCount(const v1::Hello& hello) {
  const v1::PortRange& range = hello.port_range();
  if (range.low() <= 0 || range.high() < range.low()) return 0;
  uint64_t ports = static_cast<uint64_t>(range.high() - range.low() + 1);
  return ports - ReservedPortsIn(hello, range.low(), range.high());
}

}  // namespace churnlab::analysis
