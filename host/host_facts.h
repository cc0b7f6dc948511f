// What an agent tells the coordinator about its host: name, addresses and the settings that
// decide connection-churn limits.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "churnlab/v1/agent.pb.h"
#include "common/net_address.h"
#include "common/port_set.h"

namespace churnlab {

std::string HostName();
// Addresses configured on this host's interfaces that are up: IPv4 and global IPv6, loopback
// left out unless there is nothing else.
std::vector<SocketAddress> LocalAddresses();
// net.ipv4.ip_local_port_range as {low, high}; {0, 0} when unreadable.
std::pair<int, int> LocalPortRange();
// The sysctls that shape churn limits, "net.ipv4.tcp_tw_reuse" -> "2"; unreadable ones omitted.
std::map<std::string, std::string> ChurnSysctls();
// The ports a net.ipv4.ip_local_reserved_ports list ("8080,9000-9099") holds.
PortSet ReservedPortSet(absl::string_view list);
// How many of ports low..high such a list holds.
uint32_t ReservedPortsIn(absl::string_view list, uint32_t low, uint32_t high);
// net.ipv4.ip_local_reserved_ports now; "" when unreadable.
std::string ReservedPortsList();
// RLIMIT_NOFILE's soft limit.
int64_t FdLimit();

// "<boot_id>/net:[<inode>]": the kernel and network namespace whose /proc/net counters this
// process reads; "" when unreadable.
std::string KernelId();

// Sets the hello's port range, churn sysctls, fd limit and kernel id to their values now.
void FillHostSettings(v1::Hello* hello);

}  // namespace churnlab
