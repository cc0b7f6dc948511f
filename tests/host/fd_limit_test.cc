// RaiseFdLimit on this process: the soft limit ends at the hard one, never lower than before,
// and as root the hard one reaches fs.nr_open.
#include "host/fd_limit.h"

#include <sys/resource.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace churnlab {
namespace {

TEST(FdLimitTest, RaisesTheSoftLimitToTheHardOneAndSaysSo) {
  FdLimitChange change = RaiseFdLimit();
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(change.soft, now.rlim_cur);
  EXPECT_EQ(change.hard, now.rlim_max);
  EXPECT_EQ(change.soft, change.hard);
  EXPECT_GE(change.soft, change.soft_before);
  EXPECT_GE(change.hard, change.hard_before);
  if (geteuid() == 0 && change.nr_open > 0) EXPECT_EQ(change.hard, change.nr_open);
  EXPECT_TRUE(absl::StartsWith(change.Describe(), "fd limit (RLIMIT_NOFILE): soft "))
      << change.Describe();
  // Twice is a no-op.
  FdLimitChange again = RaiseFdLimit();
  EXPECT_EQ(again.soft_before, again.soft);
  EXPECT_EQ(again.hard, change.hard);
}

TEST(FdLimitTest, UsableCoresIsAtLeastOne) { EXPECT_GE(UsableCores(), 1); }

}  // namespace
}  // namespace churnlab
