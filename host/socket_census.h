// Per source IP, the sockets toward a run's targets as the kernel sees them (sock_diag): local
// ports in use in any state, TIME_WAIT included, and counts by TCP state. This is what shows
// *why* connects start failing: the four-tuples left for a source IP run out.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net_address.h"
#include "host/host_facts.h"
#include "host/tcp_socket_table.h"

namespace churnlab {

struct SourceSockets {
  uint64_t ports_in_use = 0;      // distinct local ports
  uint64_t ports_bind_taken = 0;  // of them, in the census's bind_taken set (if given)
  std::array<uint64_t, kTcpStateSlots> by_state{};  // indexed by TcpState
  uint64_t count(TcpState state) const { return by_state[static_cast<int>(state)]; }
};

// Source IP ("127.0.0.2") -> its sockets toward `targets`.
using SocketCensus = std::map<std::string, SourceSockets>;

// Every TCP socket on the host by state (indexed by TcpState).
using HostTcpStates = std::array<uint64_t, kTcpStateSlots>;

// The sources' sockets toward `targets`. Without `host_states`: one kernel-filtered dump per
// address family in use (remote port between the targets' lowest and highest), then an exact
// match on the targets' addresses. With it: one unfiltered dump that also counts every socket
// on the host by state (the kernel walks every socket either way; the filter only saves copies).
// With `bind_taken`, each source's ports_bind_taken counts its ports in that set.
absl::StatusOr<SocketCensus> TakeSocketCensus(const std::vector<SocketAddress>& targets,
                                              HostTcpStates* host_states = nullptr,
                                              const PortSet* bind_taken = nullptr);

// Ports of the local range low..high that sockets on the host hold now, whatever their address,
// state or program: connect() skips every one that bind() took, for every source and
// destination. Listeners are counted apart (bind() took theirs, always).
// Also the namespace's TIME_WAIT sockets, any port or program: tcp_max_tw_buckets counts them all.
// With the kernel asked (BindTakenPorts), also which of them bind() took: connect() skips those
// for every source and destination, and can still use the others toward any new four-tuple.
struct RangeUse {
  uint64_t in_use = 0;     // distinct ports of low..high held by some socket
  uint64_t listening = 0;  // of them, held by a listener
  uint64_t time_wait = 0;  // TIME_WAIT sockets of the network namespace, every port
  // Of in_use, those bind() took (listeners' among them; reserved ports left out), when
  // bind_taken_known; which ones in bind_taken_ports.
  uint64_t bind_taken = 0;
  bool bind_taken_known = false;
  std::shared_ptr<const PortSet> bind_taken_ports;
  std::string bind_taken_unknown_why;  // when not known
};
absl::StatusOr<RangeUse> TakeRangeUse(int low, int high);

// The server's side: for each listening address ("ip:port"), the accepted sockets on it by TCP
// state (ports_in_use then counts sockets), and with `peers` the first kMaxListenPeers peer
// addresses of those sockets (after any NAT on the way, as the server sees them).
inline constexpr size_t kMaxListenPeers = 16;
absl::StatusOr<std::map<std::string, SourceSockets>> TakeListenCensus(
    const std::vector<SocketAddress>& listen,
    std::map<std::string, std::set<std::string>>* peers = nullptr);

// Counts `sockets` toward `targets` by source; separated from the dump for tests.
SocketCensus CountSockets(const std::vector<TcpSocketInfo>& sockets,
                          const std::vector<SocketAddress>& targets);

}  // namespace churnlab
