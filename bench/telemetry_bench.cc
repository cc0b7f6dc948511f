// What the agent's telemetry costs: one sock_diag census with ~30,000 sockets on the host (raw
// dump, kernel-filtered dump, counting), and the engine's connection rate with and without a
// telemetry sample every second. Traffic to 127.0.0.1 only; every loop is bounded.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "agent/engine.h"
#include "agent/shard_telemetry.h"
#include "host/host_facts.h"
#include "host/socket_census.h"
#include "target/target_server.h"

namespace churnlab {
namespace {

double MedianMillis(int runs, const std::function<void()>& fn) {
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

EngineParams Churn(const SocketAddress& target, std::vector<SocketAddress> sources) {
  EngineParams p;
  p.targets = {target};
  p.source_ips = std::move(sources);
  p.bind_mode = BindMode::kNoPort;
  p.concurrency = 64;
  p.duration = absl::Seconds(3);
  return p;
}

double Rate(const EngineParams& params, bool with_telemetry) {
  std::unique_ptr<Engine> engine = *Engine::Create(params);
  ShardTelemetryCollector collector("bench", params.targets, 28232);
  engine->Start();
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (with_telemetry && !done.load()) {
      collector.Collect(engine->Snapshot(), false);
      for (int i = 0; i < 10 && !done.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  EngineSnapshot s = engine->Wait();
  done.store(true);
  sampler.join();
  return s.Total().succeeded * 1e9 / s.elapsed_nanos;
}

// Long: the benchmark's script from top to bottom; each case is a few lines of it.
int Main() {
  TargetParams tp;
  tp.listen = {*SocketAddress::ParseIpPort("127.0.0.1:0")};
  tp.threads = 1;
  std::unique_ptr<TargetServer> target = *TargetServer::Create(tp);
  target->Start();
  SocketAddress address = target->addresses()[0];
  std::vector<SocketAddress> sources;
  for (int i = 2; i <= 5; ++i)
    sources.push_back(*SocketAddress::ParseIp("127.0.1." + std::to_string(i)));

  // Fill the host with ~30,000 TIME_WAIT sockets toward the target.
  EngineParams fill = Churn(address, sources);
  fill.max_connections = 30000;
  fill.duration = absl::Seconds(10);
  std::unique_ptr<Engine> filler = *Engine::Create(fill);
  filler->Start();
  filler->Wait();
  absl::StatusOr<std::vector<TcpSocketInfo>> all = DumpTcpSockets(AF_INET);
  std::printf("sockets on the host: %zu\n", all->size());

  auto visit_all = [] {
    size_t n = 0;
    (void)VisitTcpSockets(AF_INET, ~0u, PortFilter{}, [&](const RawTcpSocket&) { ++n; });
  };
  // A port no socket goes to: the kernel filters every socket out.
  auto visit_none = [] {
    size_t n = 0;
    (void)VisitTcpSockets(AF_INET, ~0u, PortFilter{PortFilter::Side::kRemote, 1, 1},
                          [&](const RawTcpSocket&) { ++n; });
  };
  double raw = MedianMillis(21, visit_all);
  double filtered_out = MedianMillis(21, visit_none);
  double census = MedianMillis(21, [&] { (void)TakeSocketCensus({address}); });
  HostTcpStates host{};
  double with_host = MedianMillis(21, [&] { (void)TakeSocketCensus({address}, &host); });
  double copies = MedianMillis(21, [] { (void)DumpTcpSockets(AF_INET); });
  std::printf("raw sock_diag dump, all sockets visited:           %.2f ms\n", raw);
  std::printf("kernel-filtered dump, every socket filtered out:   %.2f ms\n", filtered_out);
  std::printf("census of the target (all sockets match):          %.2f ms\n", census);
  std::printf("census + every host socket by state (unfiltered):  %.2f ms\n", with_host);
  std::printf("dump into copies (DumpTcpSockets, used by tests):  %.2f ms\n", copies);
  // The census of the whole port range, with the kernel asked which held ports bind() took
  // (one silent probe per held port; the fill's are all connect()'s).
  auto [low, high] = LocalPortRange();
  absl::StatusOr<RangeUse> range = TakeRangeUse(low, high);
  double range_ms = MedianMillis(5, [&] { (void)TakeRangeUse(low, high); });
  std::printf("range census, %d-%d: %lu held ports, %lu taken by bind()%s: %.2f ms\n", low, high,
              range.ok() ? static_cast<unsigned long>(range->in_use) : 0ul,
              range.ok() ? static_cast<unsigned long>(range->bind_taken) : 0ul,
              range.ok() && range->bind_taken_known ? "" : " (unknown: not asked)", range_ms);

  // The engine on a second target, so the TIME_WAIT above stays the census' load.
  std::unique_ptr<TargetServer> second = *TargetServer::Create(tp);
  second->Start();
  EngineParams run = Churn(second->addresses()[0], {*SocketAddress::ParseIp("127.0.2.2"),
                                                    *SocketAddress::ParseIp("127.0.2.3")});
  // ABBA pairs: drift in the machine's state cancels out.
  double without = 0;
  double with = 0;
  constexpr int kPairs = 6;
  for (int i = 0; i < kPairs; ++i) {
    double a1 = Rate(run, false);
    double b1 = Rate(run, true);
    double b2 = Rate(run, true);
    double a2 = Rate(run, false);
    std::printf("  without %.0f, with %.0f, with %.0f, without %.0f conn/s\n", a1, b1, b2, a2);
    without += a1 + a2;
    with += b1 + b2;
  }
  without /= 2 * kPairs;
  with /= 2 * kPairs;
  std::printf("engine rate without telemetry: %.0f conn/s\n", without);
  std::printf("engine rate with a sample/s:   %.0f conn/s\n", with);
  std::printf("telemetry cost: %.1f%% of the rate\n", 100 * (1 - with / without));
  target->Stop();
  second->Stop();
  return 0;
}

}  // namespace
}  // namespace churnlab

int main() { return churnlab::Main(); }
