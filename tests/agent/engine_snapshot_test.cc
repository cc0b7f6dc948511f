#include "agent/engine_snapshot.h"

#include <errno.h>

#include "gtest/gtest.h"

namespace churnlab {
namespace {

EngineSnapshot Snapshot(int64_t elapsed, uint64_t attempted, uint64_t succeeded, uint64_t refused,
                        uint64_t in_flight) {
  EngineSnapshot s;
  s.elapsed_nanos = elapsed;
  s.in_flight = in_flight;
  s.sources.resize(2);
  s.sources[0].source = *SocketAddress::ParseIp("127.0.0.2");
  s.sources[1].source = *SocketAddress::ParseIp("127.0.0.3");
  s.sources[0].counts.attempted = attempted;
  s.sources[0].counts.succeeded = succeeded;
  s.sources[1].counts.attempted = refused;
  s.sources[1].counts.failures.Add(Phase::kConnect, ECONNREFUSED, refused);
  for (uint64_t i = 0; i < succeeded; ++i) s.connect_latency.Record(1000);
  return s;
}

TEST(EngineSnapshotTest, SinceIsTheIntervalBetweenTwoSnapshots) {
  EngineSnapshot first = Snapshot(1'000'000'000, 100, 90, 5, 10);
  EngineSnapshot second = Snapshot(2'000'000'000, 250, 230, 12, 20);
  EngineSnapshot delta = second.Since(first);
  EXPECT_EQ(delta.elapsed_nanos, 1'000'000'000);
  EXPECT_EQ(delta.in_flight, 20u);  // a gauge: the later value
  EXPECT_EQ(delta.sources[0].counts.attempted, 150u);
  EXPECT_EQ(delta.sources[0].counts.succeeded, 140u);
  EXPECT_EQ(delta.sources[1].counts.failures_of(Phase::kConnect, ECONNREFUSED), 7u);
  EXPECT_EQ(delta.Total().attempted, 157u);
  EXPECT_EQ(delta.Total().failed(), 7u);
  EXPECT_EQ(delta.connect_latency.count(), 140u);  // histograms diff bucket by bucket
  EXPECT_NEAR(delta.connect_latency.Percentile(50), 1000, 1000 / 32);  // bucket precision
}

TEST(EngineSnapshotTest, MergeAddsSourceBySource) {
  EngineSnapshot a = Snapshot(1'000'000'000, 10, 10, 1, 2);
  EngineSnapshot b = Snapshot(1'500'000'000, 20, 15, 3, 4);
  a.Merge(b);
  EXPECT_EQ(a.elapsed_nanos, 1'500'000'000);
  EXPECT_EQ(a.in_flight, 6u);
  EXPECT_EQ(a.sources[0].counts.attempted, 30u);
  EXPECT_EQ(a.sources[1].counts.failures_of(Phase::kConnect, ECONNREFUSED), 4u);
  EXPECT_EQ(a.connect_latency.count(), 25u);
}

}  // namespace
}  // namespace churnlab
