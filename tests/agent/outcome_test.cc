// Failure counts: the sparse table a snapshot keeps (merging, subtracting, order) and the live
// counters a worker keeps (a row per phase only once that phase has failed).
#include "agent/outcome.h"

#include <errno.h>

#include <tuple>
#include <vector>

#include "gtest/gtest.h"

namespace churnlab {
namespace {

using Cells = std::vector<std::tuple<Phase, int, uint64_t>>;

Cells CellsOf(const FailureTable& table) {
  Cells cells;
  table.ForEach([&](Phase p, int code, uint64_t n) { cells.emplace_back(p, code, n); });
  return cells;
}

TEST(FailureTableTest, KeepsOnlyCellsThatAreNotZeroInPhaseThenCodeOrder) {
  FailureTable t;
  t.Add(Phase::kRead, ECONNRESET, 2);
  t.Add(Phase::kConnect, ECONNREFUSED, 3);
  t.Add(Phase::kConnect, EADDRNOTAVAIL, 0);  // nothing to keep
  t.Add(Phase::kConnect, ECONNREFUSED, 4);
  t.Add(Phase::kSocket, EMFILE, 1);
  EXPECT_EQ(CellsOf(t), (Cells{{Phase::kSocket, EMFILE, 1},
                               {Phase::kConnect, ECONNREFUSED, 7},
                               {Phase::kRead, ECONNRESET, 2}}));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.Total(), 10u);
  EXPECT_EQ(t.Get(Phase::kConnect, ECONNREFUSED), 7u);
  EXPECT_EQ(t.Get(Phase::kConnect, EADDRNOTAVAIL), 0u);
  EXPECT_EQ(t.Get(Phase::kWrite, ECONNREFUSED), 0u);
}

TEST(FailureTableTest, AnErrnoPastTheTrackedOnesSharesTheLastSlot) {
  FailureTable t;
  t.Add(Phase::kConnect, kMaxTrackedErrno + 5, 1);
  t.Add(Phase::kConnect, -1, 1);
  EXPECT_EQ(t.Get(Phase::kConnect, kMaxTrackedErrno), 2u);
  EXPECT_EQ(t.size(), 1u);
}

TEST(FailureTableTest, SubtractingAnEarlierReadingLeavesTheIntervalAndDropsZeros) {
  FailureTable earlier;
  earlier.Add(Phase::kConnect, ECONNREFUSED, 5);
  earlier.Add(Phase::kRead, ECONNRESET, 2);
  FailureTable now = earlier;
  now.Add(Phase::kConnect, ECONNREFUSED, 3);
  now.Add(Phase::kBind, EADDRINUSE, 1);
  now.Subtract(earlier);
  EXPECT_EQ(CellsOf(now),
            (Cells{{Phase::kBind, EADDRINUSE, 1}, {Phase::kConnect, ECONNREFUSED, 3}}));

  FailureTable sum = now;
  sum.Add(earlier);
  EXPECT_EQ(CellsOf(sum), (Cells{{Phase::kBind, EADDRINUSE, 1},
                                 {Phase::kConnect, ECONNREFUSED, 8},
                                 {Phase::kRead, ECONNRESET, 2}}));
}

TEST(LiveOutcomeCountsTest, ReadsBackWhatTheWorkerCounted) {
  LiveOutcomeCounts live;
  for (int i = 0; i < 3; ++i) live.Attempt();
  live.Succeed();
  live.Request();
  live.Fail(Phase::kConnect, ECONNREFUSED);
  live.Fail(Phase::kResponseTimeout, ETIMEDOUT);
  OutcomeCounts out;
  live.AddTo(&out);
  live.AddTo(&out);  // adds, as for several workers
  EXPECT_EQ(out.attempted, 6u);
  EXPECT_EQ(out.succeeded, 2u);
  EXPECT_EQ(out.requests, 2u);
  EXPECT_EQ(out.failed(), 4u);
  EXPECT_EQ(CellsOf(out.failures),
            (Cells{{Phase::kConnect, ECONNREFUSED, 2}, {Phase::kResponseTimeout, ETIMEDOUT, 2}}));
}

TEST(LiveOutcomeCountsTest, ASourceThatNeverFailedReadsAsNoFailures) {
  LiveOutcomeCounts live;
  live.Attempt();
  live.Succeed();
  OutcomeCounts out;
  live.AddTo(&out);
  EXPECT_EQ(out.failures.size(), 0u);
  EXPECT_EQ(out.failed(), 0u);
}

}  // namespace
}  // namespace churnlab
