#include "agent/port_picker.h"

namespace churnlab {

PortPicker::PortPicker(uint16_t low, uint16_t high, std::shared_ptr<const PortSet> excluded,
                       int64_t reuse_after_nanos, std::shared_ptr<const PortSet> time_wait,
                       int64_t time_wait_ends_nanos)
    : low_(low),
      high_(high),
      excluded_(std::move(excluded)),
      reuse_after_(reuse_after_nanos),
      time_wait_(std::move(time_wait)),
      time_wait_ends_(time_wait_ends_nanos) {
  for (uint32_t port = low_; low_ != 0 && port <= high_; ++port) {
    if (excluded_ == nullptr || !excluded_->test(port)) ++usable_;
  }
}

PortPicker::Destination& PortPicker::Of(uint64_t pair) {
  return destinations_.try_emplace(pair, Destination{low_, {}, {}, {}, {}, {}}).first->second;
}

uint16_t PortPicker::Pick(uint64_t pair, int64_t now, bool* taking_over) {
  Destination& d = Of(pair);
  if (taking_over != nullptr) *taking_over = false;
  if (!d.now.empty()) {
    uint16_t port = d.now.back();
    d.now.pop_back();
    return port;
  }
  while (low_ != 0 && d.fresh <= high_) {
    uint16_t port = static_cast<uint16_t>(d.fresh++);
    if (excluded_ != nullptr && excluded_->test(port)) continue;
    if (time_wait_ == nullptr || !time_wait_->test(port) || time_wait_ends_ <= now) return port;
    d.before.push_back(port);
  }
  if (!d.soon.empty() && d.soon.top().at <= now) {
    const Due due = d.soon.top();
    d.soon.pop();
    if (taking_over != nullptr) *taking_over = due.taking_over;
    return due.port;
  }
  if (!d.waiting.empty() && d.waiting.front().second <= now) {
    uint16_t port = d.waiting.front().first;
    d.waiting.pop_front();
    return port;
  }
  if (!d.before.empty() && time_wait_ends_ <= now) {
    uint16_t port = d.before.back();
    d.before.pop_back();
    return port;
  }
  return 0;
}

void PortPicker::Release(uint64_t pair, uint16_t port, int64_t now, Reuse reuse,
                         int64_t soon_nanos) {
  Destination& d = Of(pair);
  switch (reuse) {
    case Reuse::kNow:
      d.now.push_back(port);
      return;
    case Reuse::kSoon:
    case Reuse::kTakeOver:
      d.soon.push(Due{now + soon_nanos, port, reuse == Reuse::kTakeOver});
      return;
    case Reuse::kAfterTimeWait:
      d.waiting.emplace_back(port, now + reuse_after_);
      return;
  }
}

std::pair<uint16_t, uint16_t> PortSlice(uint16_t low, uint16_t high, int index, int count) {
  const uint32_t ports = high >= low ? high - low + 1u : 0;
  const uint32_t from = low + static_cast<uint32_t>(uint64_t{ports} * index / count);
  const uint32_t to = low + static_cast<uint32_t>(uint64_t{ports} * (index + 1) / count);
  if (to <= from) return {1, 0};
  return {static_cast<uint16_t>(from), static_cast<uint16_t>(to - 1)};
}

}  // namespace churnlab
