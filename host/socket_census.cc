#include "host/socket_census.h"

#include <arpa/inet.h>
#include <string.h>

#include <algorithm>
#include <bitset>
#include <memory>

#include "host/bind_probe.h"

namespace churnlab {
namespace {

// An address as raw bytes, for comparisons that cost nothing per socket.
struct RawAddress {
  int family = 0;
  uint8_t bytes[16] = {};
  uint16_t port = 0;

  static RawAddress Of(const SocketAddress& a) {
    RawAddress out;
    out.family = a.family();
    if (a.family() == AF_INET) {
      memcpy(out.bytes, &reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr())->sin_addr, 4);
    } else {
      memcpy(out.bytes, &reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr())->sin6_addr, 16);
    }
    out.port = static_cast<uint16_t>(a.port());
    return out;
  }
  bool SameIp(int f, const uint8_t* other) const {
    return family == f && memcmp(bytes, other, f == AF_INET ? 4 : 16) == 0;
  }
  // 0.0.0.0 or ::, as a wildcard listener's address.
  bool IsWildcard() const {
    static constexpr uint8_t kZeros[16] = {};
    return memcmp(bytes, kZeros, family == AF_INET ? 4 : 16) == 0;
  }
  // Whether a socket with this local address was accepted on this listening address: the same
  // address, or any of the family for a wildcard listener (whose accepted sockets carry the
  // address the client reached; IPv4 clients of [::] appear as v4-mapped IPv6 sockets).
  bool Accepts(int f, const uint8_t* local) const {
    return IsWildcard() ? family == f : SameIp(f, local);
  }
  std::string IpString() const {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(family, bytes, text, sizeof(text));
    return text;
  }
};

struct Tally {
  RawAddress source;
  SourceSockets sockets;
  std::unique_ptr<PortSet> ports = std::make_unique<PortSet>();
};

class Counter {
 public:
  explicit Counter(const std::vector<SocketAddress>& targets) {
    for (const SocketAddress& t : targets) targets_.push_back(RawAddress::Of(t));
  }

  void Add(int family, TcpState state, const uint8_t* local, uint16_t local_port,
           const uint8_t* remote, uint16_t remote_port) {
    if (state == TcpState::kListen) return;
    bool toward_target = std::any_of(targets_.begin(), targets_.end(), [&](const RawAddress& t) {
      return t.port == remote_port && t.SameIp(family, remote);
    });
    if (!toward_target) return;
    Tally& tally = TallyFor(family, local);
    size_t index = static_cast<size_t>(state);
    if (index < tally.sockets.by_state.size()) ++tally.sockets.by_state[index];
    if (!tally.ports->test(local_port)) {
      tally.ports->set(local_port);
      ++tally.sockets.ports_in_use;
    }
  }

  SocketCensus Result(const PortSet* bind_taken = nullptr) const {
    SocketCensus out;
    for (const Tally& t : tallies_) {
      SourceSockets& sockets = out[t.source.IpString()] = t.sockets;
      if (bind_taken != nullptr) sockets.ports_bind_taken = (*t.ports & *bind_taken).count();
    }
    return out;
  }

 private:
  // Few sources per agent: a linear scan that starts from the last hit.
  Tally& TallyFor(int family, const uint8_t* local) {
    if (last_ < tallies_.size() && tallies_[last_].source.SameIp(family, local)) {
      return tallies_[last_];
    }
    for (last_ = 0; last_ < tallies_.size(); ++last_) {
      if (tallies_[last_].source.SameIp(family, local)) return tallies_[last_];
    }
    Tally tally;
    tally.source.family = family;
    memcpy(tally.source.bytes, local, family == AF_INET ? 4 : 16);
    tallies_.push_back(std::move(tally));
    last_ = tallies_.size() - 1;
    return tallies_.back();
  }

  std::vector<RawAddress> targets_;
  std::vector<Tally> tallies_;
  size_t last_ = 0;
};

// The lowest and highest port among `addresses` of `family`; {65536, 0} when there is none.
std::pair<int, int> PortSpan(const std::vector<SocketAddress>& addresses, int family) {
  int low = 65536;
  int high = 0;
  for (const SocketAddress& a : addresses) {
    if (a.family() != family) continue;
    low = std::min(low, a.port());
    high = std::max(high, a.port());
  }
  return {low, high};
}

}  // namespace

SocketCensus CountSockets(const std::vector<TcpSocketInfo>& sockets,
                          const std::vector<SocketAddress>& targets) {
  Counter counter(targets);
  for (const TcpSocketInfo& s : sockets) {
    RawAddress local = RawAddress::Of(s.local);
    RawAddress remote = RawAddress::Of(s.remote);
    counter.Add(local.family, s.state, local.bytes, local.port, remote.bytes, remote.port);
  }
  return counter.Result();
}

absl::StatusOr<SocketCensus> TakeSocketCensus(const std::vector<SocketAddress>& targets,
                                              HostTcpStates* host_states,
                                              const PortSet* bind_taken) {
  Counter counter(targets);
  if (host_states != nullptr) host_states->fill(0);
  for (int family : {AF_INET, AF_INET6}) {
    auto [low, high] = PortSpan(targets, family);
    if (high == 0 && host_states == nullptr) continue;
    PortFilter filter =
        host_states != nullptr ? PortFilter{} : PortFilter{PortFilter::Side::kRemote, low, high};
    absl::Status status = VisitTcpSockets(
        family, host_states != nullptr ? ~0u : AllButListen(), filter, [&](const RawTcpSocket& s) {
          if (host_states != nullptr && static_cast<size_t>(s.state) < host_states->size()) {
            ++(*host_states)[static_cast<size_t>(s.state)];
          }
          counter.Add(s.family, s.state, s.local_address, s.local_port, s.remote_address,
                      s.remote_port);
        });
    if (!status.ok()) return status;
  }
  return counter.Result(bind_taken);
}

absl::StatusOr<RangeUse> TakeRangeUse(int low, int high) {
  RangeUse out;
  if (low <= 0 || high < low || high > 65535) return out;
  // IPv4 and IPv6 sockets share the port space.
  auto held = std::make_unique<PortSet>();
  auto listening = std::make_unique<PortSet>();
  for (int family : {AF_INET, AF_INET6}) {
    absl::Status status = VisitTcpSockets(
        family, ~0u, PortFilter{PortFilter::Side::kLocal, low, high}, [&](const RawTcpSocket& s) {
          held->set(s.local_port);
          if (s.state == TcpState::kListen) {
            listening->set(s.local_port);
          }
        });
    if (!status.ok()) return status;
    // The kernel filters by state: a walk of the table that copies only TIME_WAIT sockets.
    status = VisitTcpSockets(family, 1u << static_cast<int>(TcpState::kTimeWait), PortFilter{},
                             [&](const RawTcpSocket&) { ++out.time_wait; });
    if (!status.ok()) return status;
  }
  out.in_use = held->count();
  out.listening = listening->count();
  absl::StatusOr<std::unique_ptr<PortSet>> taken = BindTakenPorts(*held);
  if (taken.ok()) {
    out.bind_taken = (*taken)->count();
    out.bind_taken_known = true;
    out.bind_taken_ports = std::move(*taken);
  } else {
    out.bind_taken_unknown_why = std::string(taken.status().message());
  }
  return out;
}

absl::StatusOr<std::map<std::string, SourceSockets>> TakeListenCensus(
    const std::vector<SocketAddress>& listen, std::map<std::string, std::set<std::string>>* peers) {
  std::vector<RawAddress> wanted;
  for (const SocketAddress& a : listen) wanted.push_back(RawAddress::Of(a));
  std::vector<SourceSockets> counts(listen.size());
  std::vector<std::set<std::string>> seen(listen.size());
  for (int family : {AF_INET, AF_INET6}) {
    auto [low, high] = PortSpan(listen, family);
    if (high == 0) continue;
    absl::Status status = VisitTcpSockets(
        family, AllButListen(), PortFilter{PortFilter::Side::kLocal, low, high},
        [&](const RawTcpSocket& s) {
          for (size_t i = 0; i < wanted.size(); ++i) {
            if (wanted[i].port != s.local_port || !wanted[i].Accepts(s.family, s.local_address)) {
              continue;
            }
            size_t state = static_cast<size_t>(s.state);
            if (state < counts[i].by_state.size()) ++counts[i].by_state[state];
            ++counts[i].ports_in_use;  // here: sockets on the address
            if (peers != nullptr && seen[i].size() < kMaxListenPeers) {
              char text[INET6_ADDRSTRLEN] = {};
              inet_ntop(s.family, s.remote_address, text, sizeof(text));
              seen[i].insert(text);
            }
          }
        });
    if (!status.ok()) return status;
  }
  std::map<std::string, SourceSockets> out;
  for (size_t i = 0; i < listen.size(); ++i) {
    out[listen[i].ToString()] = counts[i];
    if (peers != nullptr) (*peers)[listen[i].ToString()] = std::move(seen[i]);
  }
  return out;
}

}  // namespace churnlab
