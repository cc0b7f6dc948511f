// Bind mode engine: each connection's source port, picked by the engine per (source IP,
// destination) from a slice of the port range, so connect() has no port to search for. The
// kernel's own search (no-port) slows as the range fills; this one does not: a port freed at once
// (no TIME_WAIT on this side), else one never used toward the destination, else the one free
// again longest ago (a TIME_WAIT over, or one the kernel lets a bound socket take over). One per
// worker thread (no locks), each with a slice of its own.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/port_set.h"

namespace churnlab {

class PortPicker {
 public:
  // Ports low..high less `excluded` (may be null); a port closed with a TIME_WAIT here is taken
  // again toward its destination `reuse_after_nanos` after it closed. A port of `time_wait` (may
  // be null: a TIME_WAIT from before) is taken no sooner than `time_wait_ends_nanos`, toward any
  // destination.
  PortPicker(uint16_t low, uint16_t high, std::shared_ptr<const PortSet> excluded,
             int64_t reuse_after_nanos, std::shared_ptr<const PortSet> time_wait = nullptr,
             int64_t time_wait_ends_nanos = 0);

  // A port free toward destination `pair` (any number naming a source and destination) at
  // `now`: one freed at once, else one never used toward it, else the one due longest ago
  // (`taking_over` says whether it was released kTakeOver); 0 when every port of the slice is in
  // use or waiting toward it.
  uint16_t Pick(uint64_t pair, int64_t now, bool* taking_over = nullptr);
  // When a closed port may be taken again toward its destination: at once (its socket is gone:
  // reset, or it never sent a SYN); `soon_nanos` from now, when the server closed first (this
  // side's socket lingers in LAST_ACK until the server's ACK, about a round trip) or when this
  // side closed first on a connection with TCP timestamps, whose TIME_WAIT a bound socket's
  // connect() takes over once our FIN is acknowledged (kTakeOver); or once its TIME_WAIT is over
  // (reuse_after).
  enum class Reuse { kNow, kSoon, kTakeOver, kAfterTimeWait };
  void Release(uint64_t pair, uint16_t port, int64_t now, Reuse reuse, int64_t soon_nanos = 0);
  // The kernel refused `port` for `pair` (another socket's four-tuple or bind(): a program the
  // engine does not know of): it waits reuse_after, like a TIME_WAIT, before it is tried again.
  void SetAside(uint64_t pair, uint16_t port, int64_t now) {
    Release(pair, port, now, Reuse::kAfterTimeWait);
  }

  // Ports the slice offers each destination.
  uint32_t usable() const { return usable_; }

  // What the engine learned of a destination's TIME_WAITs: how long one waits to be taken over
  // (kTakeOver's soon_nanos; 0: none is, no TCP timestamps), and how many closes until it asks the
  // kernel again (TCP_INFO).
  struct Takeover {
    int64_t wait = 0;
    uint32_t until_ask = 0;
  };
  Takeover& TakeoverOf(uint64_t pair) { return Of(pair).takeover; }

 private:
  // Ports free again later, each with the time it is, oldest first.
  using Queue = std::deque<std::pair<uint16_t, int64_t>>;
  // Ports due after a round trip or so, each its own: the soonest first.
  struct Due {
    int64_t at;
    uint16_t port;
    bool taking_over;
    bool operator>(const Due& o) const { return at > o.at; }
  };
  using Heap = std::priority_queue<Due, std::vector<Due>, std::greater<Due>>;
  struct Destination {
    uint32_t fresh;                // the next port never used toward it
    std::vector<uint16_t> now;     // free at once (Reuse::kNow)
    Heap soon;                     // Reuse::kSoon and kTakeOver
    Queue waiting;                 // Reuse::kAfterTimeWait and ports set aside, oldest first
    std::vector<uint16_t> before;  // time_wait's, due at time_wait_ends_
    Takeover takeover;
  };
  Destination& Of(uint64_t pair);

  const uint16_t low_;
  const uint16_t high_;
  const std::shared_ptr<const PortSet> excluded_;
  const int64_t reuse_after_;
  const std::shared_ptr<const PortSet> time_wait_;
  const int64_t time_wait_ends_;
  uint32_t usable_ = 0;
  absl::flat_hash_map<uint64_t, Destination> destinations_;
};

// The slice of low..high that part `index` of `count` picks from (parts differ by one port at
// most); {1, 0} (empty) when there are more parts than ports.
std::pair<uint16_t, uint16_t> PortSlice(uint16_t low, uint16_t high, int index, int count);

}  // namespace churnlab
