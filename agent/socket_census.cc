#include "agent/socket_census.h"

#include <algorithm>
#include <bitset>
#include <memory>
#include <set>

namespace churnlab {

SocketCensus CountSockets(const std::vector<TcpSocketInfo>& sockets,
                          const std::vector<SocketAddress>& targets) {
  std::set<std::string> wanted;
  for (const SocketAddress& t : targets) wanted.insert(t.ToString());
  SocketCensus census;
  std::map<std::string, std::unique_ptr<std::bitset<65536>>> ports;
  for (const TcpSocketInfo& s : sockets) {
    if (s.state == TcpState::kListen || wanted.count(s.remote.ToString()) == 0) continue;
    std::string source = s.local.IpString();
    SourceSockets& entry = census[source];
    size_t state = static_cast<size_t>(s.state);
    if (state < entry.by_state.size()) ++entry.by_state[state];
    auto& used = ports[source];
    if (used == nullptr) used = std::make_unique<std::bitset<65536>>();
    if (!used->test(s.local.port())) {
      used->set(s.local.port());
      ++entry.ports_in_use;
    }
  }
  return census;
}

absl::StatusOr<SocketCensus> TakeSocketCensus(const std::vector<SocketAddress>& targets) {
  std::vector<TcpSocketInfo> sockets;
  for (int family : {AF_INET, AF_INET6}) {
    int low = 65536;
    int high = 0;
    for (const SocketAddress& t : targets) {
      if (t.family() != family) continue;
      low = std::min(low, t.port());
      high = std::max(high, t.port());
    }
    if (high == 0) continue;
    absl::StatusOr<std::vector<TcpSocketInfo>> dump = DumpTcpSocketsToPorts(family, low, high);
    if (!dump.ok()) return dump.status();
    sockets.insert(sockets.end(), dump->begin(), dump->end());
  }
  return CountSockets(sockets, targets);
}

}  // namespace churnlab
