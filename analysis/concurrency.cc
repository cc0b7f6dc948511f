#include "analysis/concurrency.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/run_shape.h"

namespace churnlab::analysis {
namespace {

// Per kernel (agents in one host and namespace share it): its memory and fd figures, once.
struct HostFigures {
  int64_t slab_growth = 0;
  uint64_t mem_available = 0;
  uint64_t file_max = 0;
  bool both_ends = false;  // the server's end of each connection is on this kernel too
};

uint64_t SysctlNumber(const v1::Hello& hello, const char* key) {
  auto it = hello.sysctls().find(key);
  uint64_t value = 0;
  if (it != hello.sysctls().end() && absl::SimpleAtoi(it->second, &value)) return value;
  return 0;
}

std::string Thousands(uint64_t n) {
  std::string digits = absl::StrCat(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Four-tuples a source of `shard` can hold open, as the tuple budget counts its ports: the range
// less the reserved ports, times the destinations unless bind() takes the port for all of them.
uint64_t SourcePortBound(const ConcurrencyShard& shard) {
  uint64_t ports = PortCount(*shard.hello);
  if (ports == 0) ports = shard.latest->port_range_size();
  return ports * (BindReservesPort(shard.bind) ? 1 : shard.destinations);
}

void AddSources(const ConcurrencyShard& shard, v1::ConcurrencyReport* out) {
  uint64_t bound = SourcePortBound(shard);
  bool shared = shard.bind == BindMode::kBindAny;  // every address's port at once
  bool first = true;
  for (const v1::SourceCounts& source : shard.latest->sources()) {
    v1::SourceConcurrency* s = out->add_sources();
    s->set_agent(shard.agent);
    s->set_ip(source.ip());
    s->set_peak_established(source.peak_established());
    s->set_peak_ports_in_use(source.peak_ports_in_use());
    s->set_port_bound(bound);
    out->set_peak_established(out->peak_established() + source.peak_established());
    if (!shared || first) out->set_port_bound(out->port_bound() + bound);
    first = false;
  }
  // More source IPs add nothing under bind-any: no per-source figure to project from.
  if (!shared) out->set_per_source_ip(std::max(out->per_source_ip(), bound));
}

// The smallest known bound names the limiter.
void ChooseLimiter(v1::ConcurrencyReport* out) {
  std::vector<std::pair<uint64_t, v1::ConcurrencyReport::Limiter>> bounds = {
      {out->fd_bound(), v1::ConcurrencyReport::LIMITER_FDS},
      {out->port_bound(), v1::ConcurrencyReport::LIMITER_PORTS},
      {out->memory_bound(), v1::ConcurrencyReport::LIMITER_MEMORY}};
  uint64_t least = 0;
  for (const auto& [bound, limiter] : bounds) {
    if (bound > 0 && (least == 0 || bound < least)) {
      least = bound;
      out->set_limiter(limiter);
    }
  }
}

// "This host could hold about N ...": the smallest bound, then what lifting it gives.
std::string Projection(const v1::ConcurrencyReport& r, size_t sources) {
  uint64_t held = std::max(r.peak_established(), r.peak_in_flight());
  std::string out = absl::StrFormat(
      "Held %s connections at once (%s by the kernel's count) from %d source IPs; each cost "
      "%.0f bytes of kernel memory and %.0f of user space. Bounds: fds %s, ports %s, memory %s.",
      Thousands(held), Thousands(r.peak_established()), sources, r.kernel_bytes_per_connection(),
      r.user_bytes_per_connection(), Thousands(r.fd_bound()), Thousands(r.port_bound()),
      Thousands(r.memory_bound()));
  if (r.limiter() == v1::ConcurrencyReport::LIMITER_UNSPECIFIED) return out;
  uint64_t fd = r.fd_bound() ? r.fd_bound() : UINT64_MAX;
  uint64_t mem = r.memory_bound() ? r.memory_bound() : UINT64_MAX;
  if (r.limiter() == v1::ConcurrencyReport::LIMITER_PORTS && r.per_source_ip() > 0) {
    uint64_t next = std::min(fd, mem);
    uint64_t more = (next - r.port_bound() + r.per_source_ip() - 1) / r.per_source_ip();
    absl::StrAppend(&out, " Ports limit first: this host could hold about ",
                    Thousands(r.port_bound()), " with these source IPs, and about ",
                    Thousands(next), " with ", more, " more source IPs (",
                    Thousands(r.per_source_ip()), " each).");
  } else if (r.limiter() == v1::ConcurrencyReport::LIMITER_MEMORY && r.per_gib() > 0) {
    uint64_t next = std::min(fd, r.port_bound() ? r.port_bound() : UINT64_MAX);
    absl::StrAppend(&out, " Memory limits first: this host could hold about ",
                    Thousands(r.memory_bound()), ", and about ", Thousands(next), " with ",
                    (next - r.memory_bound() + r.per_gib() - 1) / r.per_gib(), " more GiB (",
                    Thousands(r.per_gib()), " connections per GiB).");
  } else if (r.limiter() == v1::ConcurrencyReport::LIMITER_FDS) {
    absl::StrAppend(&out, " fs.file-max limits first: this host could hold about ",
                    Thousands(r.fd_bound()), "; raise fs.file-max for more.");
  }
  return out;
}

}  // namespace

std::string BootIdOf(const v1::Hello& hello) {
  const std::string& id = hello.kernel_id();
  return id.substr(0, id.find('/'));
}

v1::ConcurrencyReport AnalyzeConcurrency(const std::vector<ConcurrencyShard>& shards,
                                         const std::set<std::string>& observer_kernels,
                                         bool targets_loopback) {
  v1::ConcurrencyReport out;
  std::map<std::string, HostFigures> hosts;
  uint64_t pss = 0;
  for (const ConcurrencyShard& shard : shards) {
    if (shard.latest == nullptr || shard.hello == nullptr) continue;
    AddSources(shard, &out);
    out.set_peak_in_flight(out.peak_in_flight() + shard.latest->peak_in_flight());
    // What the connections added: the processes' fixed cost is no connection's.
    const v1::ShardMemory& memory = shard.latest->memory();
    pss += memory.pss_bytes() > memory.pss_at_start_bytes()
               ? memory.pss_bytes() - memory.pss_at_start_bytes()
               : 0;
    // Memory, slab and fs.file-max are the kernel's (its boot id), shared by every network
    // namespace on it: agents in two namespaces of one kernel (the netns lab, pods of one
    // node) have them once.
    std::string boot = BootIdOf(*shard.hello);
    HostFigures& host = hosts[boot.empty() ? shard.agent : boot];
    host.both_ends = targets_loopback || (!boot.empty() && observer_kernels.count(boot) > 0);
    host.slab_growth = std::max(host.slab_growth, shard.latest->memory().slab_growth_bytes());
    host.mem_available =
        std::max(host.mem_available, shard.latest->memory().mem_available_at_start_bytes());
    host.file_max = SysctlNumber(*shard.hello, "fs.file-max");
  }
  uint64_t held = out.peak_established() > 0 ? out.peak_established() : out.peak_in_flight();
  if (held == 0) return v1::ConcurrencyReport();
  int64_t slab = 0;
  uint64_t available = 0;
  bool shared = false;
  for (const auto& [id, host] : hosts) {
    slab += host.slab_growth;
    available += host.mem_available;
    // Each connection is an fd at each end: two of this kernel's when it holds both.
    out.set_fd_bound(out.fd_bound() + (host.both_ends ? host.file_max / 2 : host.file_max));
    shared = shared || host.both_ends;
  }
  out.set_kernel_bytes_per_connection(std::max<int64_t>(0, slab) / static_cast<double>(held));
  out.set_user_bytes_per_connection(pss / static_cast<double>(held));
  out.set_kernel_note(
      shared ? "the growth of the host's Slab (tcp_sock, inode, dentry, file, epoll item), both "
               "ends of each connection: the target shares the agents' kernel, and each "
               "connection costs it 2 fds (the fd bound is fs.file-max / 2)"
             : "the growth of the host's Slab (tcp_sock, inode, dentry, file, epoll item): a "
               "target on the agents' host adds its end of each connection");
  double per_connection = out.kernel_bytes_per_connection() + out.user_bytes_per_connection();
  if (per_connection > 0 && slab > 0) {
    out.set_memory_bound(static_cast<uint64_t>(available / per_connection));
    out.set_per_gib(static_cast<uint64_t>(std::ldexp(1.0, 30) / per_connection));
  }
  ChooseLimiter(&out);
  out.set_projection(Projection(out, out.sources_size()));
  return out;
}

}  // namespace churnlab::analysis
