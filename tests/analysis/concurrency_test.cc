// AnalyzeConcurrency on telemetry as agents send it: peaks per source and in total, memory per
// connection, the first bound and the projection.
#include "analysis/concurrency.h"

#include "gtest/gtest.h"

namespace churnlab::analysis {
namespace {

struct Agent {
  v1::Hello hello;
  v1::ShardTelemetry latest;
};

// An agent holding `per_source` connections from each of `sources` IPs (28,232 ports each), at
// 2,000 bytes of kernel and 100 of user memory a connection, with `available` bytes free.
Agent Holding(int sources, uint64_t per_source, uint64_t available) {
  Agent a;
  a.hello.set_kernel_id("boot/net:[1]");
  (*a.hello.mutable_sysctls())["fs.file-max"] = "10000000";
  a.latest.set_port_range_size(28232);
  for (int i = 0; i < sources; ++i) {
    v1::SourceCounts* s = a.latest.add_sources();
    s->set_ip("127.0.1." + std::to_string(i + 1));
    s->set_peak_established(per_source);
    s->set_peak_ports_in_use(per_source);
  }
  uint64_t held = per_source * sources;
  a.latest.set_peak_in_flight(held);
  a.latest.mutable_memory()->set_pss_bytes(held * 100);
  a.latest.mutable_memory()->set_slab_growth_bytes(static_cast<int64_t>(held * 2000));
  a.latest.mutable_memory()->set_mem_available_at_start_bytes(available);
  return a;
}

TEST(ConcurrencyTest, PortsLimitFirstAndMoreSourceIpsLiftThem) {
  Agent a = Holding(2, 25000, uint64_t{21} << 30);  // 21 GiB free
  v1::ConcurrencyReport r = AnalyzeConcurrency({ConcurrencyShard{"a1", &a.hello, &a.latest, 1}});
  EXPECT_EQ(r.peak_established(), 50000u);
  EXPECT_EQ(r.peak_in_flight(), 50000u);
  ASSERT_EQ(r.sources_size(), 2);
  EXPECT_EQ(r.sources(1).port_bound(), 28232u);
  EXPECT_DOUBLE_EQ(r.kernel_bytes_per_connection(), 2000);
  EXPECT_DOUBLE_EQ(r.user_bytes_per_connection(), 100);
  EXPECT_EQ(r.port_bound(), 2u * 28232);
  EXPECT_EQ(r.memory_bound(), (uint64_t{21} << 30) / 2100);  // 10,737,418
  EXPECT_EQ(r.fd_bound(), 10'000'000u);
  EXPECT_EQ(r.limiter(), v1::ConcurrencyReport::LIMITER_PORTS);
  // The next bound is fs.file-max: (10,000,000 - 56,464) / 28,232 rounds up to 353 more IPs.
  EXPECT_NE(r.projection().find("about 10,000,000 with 353 more source IPs"), std::string::npos)
      << r.projection();
}

// The port bound counts ports as the kernel hands them out: the reserved ones never; under bind
// mode `bind` one four-tuple a port whatever the destinations; under `bind-any` one set of
// ports for all the shard's addresses, so more source IPs are no lever.
TEST(ConcurrencyTest, ThePortBoundFollowsTheBindModeAndReservedPorts) {
  Agent a = Holding(2, 100, uint64_t{21} << 30);
  a.hello.mutable_port_range()->set_low(40000);
  a.hello.mutable_port_range()->set_high(40099);
  a.hello.set_reserved_ports(10);
  auto bound = [&](BindMode bind, uint32_t destinations) {
    return AnalyzeConcurrency({ConcurrencyShard{"a1", &a.hello, &a.latest, destinations, bind}});
  };
  EXPECT_EQ(bound(BindMode::kNoPort, 2).port_bound(), 2u * 90 * 2);
  EXPECT_EQ(bound(BindMode::kNone, 2).sources(0).port_bound(), 90u * 2);
  v1::ConcurrencyReport bind = bound(BindMode::kBind, 2);
  EXPECT_EQ(bind.sources(0).port_bound(), 90u);
  EXPECT_EQ(bind.port_bound(), 2u * 90);
  v1::ConcurrencyReport any = bound(BindMode::kBindAny, 2);
  EXPECT_EQ(any.port_bound(), 90u);
  EXPECT_EQ(any.per_source_ip(), 0u);
  EXPECT_EQ(any.projection().find("more source IPs"), std::string::npos) << any.projection();
}

TEST(ConcurrencyTest, MemoryLimitsWhenItIsScarce) {
  Agent a = Holding(40, 25000, uint64_t{1} << 30);  // 1 GiB free
  v1::ConcurrencyReport r = AnalyzeConcurrency({ConcurrencyShard{"a1", &a.hello, &a.latest, 1}});
  EXPECT_EQ(r.limiter(), v1::ConcurrencyReport::LIMITER_MEMORY);
  EXPECT_EQ(r.per_gib(), (uint64_t{1} << 30) / 2100);
  EXPECT_NE(r.projection().find("more GiB"), std::string::npos) << r.projection();
}

// Two agents in two network namespaces of one kernel (the lab, pods of a node) share its
// memory, slab and fs.file-max: counted once, not twice. The processes' fixed cost is no
// connection's.
TEST(ConcurrencyTest, KernelFiguresCountOncePerKernelAndUserBytesLeaveTheFixedCost) {
  Agent a = Holding(1, 25000, uint64_t{21} << 30);
  Agent b = Holding(1, 25000, uint64_t{21} << 30);
  b.hello.set_kernel_id("boot/net:[2]");  // same boot id, another namespace
  a.latest.mutable_memory()->set_pss_at_start_bytes(4'000'000);
  a.latest.mutable_memory()->set_pss_bytes(4'000'000 + 25000 * 100);
  v1::ConcurrencyReport r = AnalyzeConcurrency({ConcurrencyShard{"a1", &a.hello, &a.latest, 1},
                                                ConcurrencyShard{"a2", &b.hello, &b.latest, 1}});
  EXPECT_EQ(r.fd_bound(), 10'000'000u);                     // one kernel's fs.file-max
  EXPECT_DOUBLE_EQ(r.kernel_bytes_per_connection(), 1000);  // one kernel's slab over 50,000
  EXPECT_DOUBLE_EQ(r.user_bytes_per_connection(), 100);
  Agent c = Holding(1, 25000, uint64_t{21} << 30);
  c.hello.set_kernel_id("other-boot/net:[1]");
  v1::ConcurrencyReport two = AnalyzeConcurrency({ConcurrencyShard{"a1", &a.hello, &a.latest, 1},
                                                  ConcurrencyShard{"a3", &c.hello, &c.latest, 1}});
  EXPECT_EQ(two.fd_bound(), 20'000'000u);  // two kernels
  // The target on the first kernel too (an observer with its boot id): each connection costs
  // that kernel 2 fds, so it holds half as many.
  v1::ConcurrencyReport shared =
      AnalyzeConcurrency({ConcurrencyShard{"a1", &a.hello, &a.latest, 1},
                          ConcurrencyShard{"a3", &c.hello, &c.latest, 1}},
                         {BootIdOf(a.hello)});
  EXPECT_EQ(BootIdOf(a.hello), "boot");
  EXPECT_EQ(shared.fd_bound(), 5'000'000u + 10'000'000u);
  EXPECT_NE(shared.kernel_note().find("2 fds"), std::string::npos) << shared.kernel_note();
  // Loopback targets: the server is on every agent's kernel.
  v1::ConcurrencyReport loopback =
      AnalyzeConcurrency({ConcurrencyShard{"a1", &a.hello, &a.latest, 1},
                          ConcurrencyShard{"a3", &c.hello, &c.latest, 1}},
                         {}, /*targets_loopback=*/true);
  EXPECT_EQ(loopback.fd_bound(), 5'000'000u + 5'000'000u);
}

TEST(ConcurrencyTest, NothingHeldGivesNoReport) {
  Agent a = Holding(1, 0, 1 << 30);
  v1::ConcurrencyReport r = AnalyzeConcurrency({ConcurrencyShard{"a1", &a.hello, &a.latest, 1}});
  EXPECT_EQ(r.peak_established(), 0u);
  EXPECT_TRUE(r.projection().empty());
}

}  // namespace
}  // namespace churnlab::analysis
