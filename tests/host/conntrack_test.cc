// The conntrack reader on the kernel's own text (two CPUs, hex columns) and on files laid out as
// /proc lays them out.
#include "host/conntrack.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace churnlab {
namespace {

// As Linux 6.x prints /proc/net/stat/nf_conntrack (the spacing is the kernel's).
constexpr char kTwoCpus[] =
    "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop "
    "early_drop icmp_error  expect_new expect_create expect_delete search_restart\n"
    "00000028  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000003 "
    "00000001 00000000 00000000  00000000 00000000 00000000 00000000\n"
    "00000028  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 0000000b "
    "0000000b 000000ff 00000000  00000000 00000000 00000000 00000000\n";

TEST(ConntrackTest, SumsThePerCpuHexColumns) {
  absl::StatusOr<ConntrackStats> stats = ParseConntrackStat(kTwoCpus);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->count, 40u);  // "entries": the namespace's count, on every line
  EXPECT_EQ(stats->insert_failed, 3u + 11u);
  EXPECT_EQ(stats->drop, 1u + 11u);
  EXPECT_EQ(stats->early_drop, 255u);
}

TEST(ConntrackTest, FindsColumnsByName) {
  absl::StatusOr<ConntrackStats> stats =
      ParseConntrackStat("drop early_drop entries insert_failed\n10 0 5 2\n");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->drop, 16u);
  EXPECT_EQ(stats->count, 5u);
  EXPECT_EQ(stats->insert_failed, 2u);
}

TEST(ConntrackTest, RefusesWhatIsNotTheKernelsTable) {
  EXPECT_FALSE(ParseConntrackStat("").ok());
  EXPECT_FALSE(ParseConntrackStat("entries drop\n1 2\n").ok());  // no insert_failed column
  EXPECT_FALSE(ParseConntrackStat("entries insert_failed drop early_drop\n1 2 zz 4\n").ok());
  EXPECT_FALSE(ParseConntrackStat("entries insert_failed drop early_drop\n1 2 3\n").ok());
}

TEST(ConntrackTest, ReadsCountAndMaxBesideTheStats) {
  std::filesystem::path proc =
      std::filesystem::temp_directory_path() / ("conntrack_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(proc / "net/stat");
  std::filesystem::create_directories(proc / "sys/net/netfilter");
  EXPECT_EQ(ReadConntrack(proc.string()).status().code(), absl::StatusCode::kNotFound);
  std::ofstream(proc / "net/stat/nf_conntrack") << kTwoCpus;
  std::ofstream(proc / "sys/net/netfilter/nf_conntrack_count") << "41\n";
  std::ofstream(proc / "sys/net/netfilter/nf_conntrack_max") << "262144\n";
  absl::StatusOr<ConntrackStats> stats = ReadConntrack(proc.string());
  std::filesystem::remove_all(proc);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->count, 41u);  // nf_conntrack_count, read after the stats, wins
  EXPECT_EQ(stats->max, 262144u);
  EXPECT_EQ(ConntrackCounters(*stats).at("ConntrackInsertFailed"), 14);
}

TEST(ConntrackTest, ThisHostsTableReadsWhenTheKernelHasOne) {
  absl::StatusOr<ConntrackStats> stats = ReadConntrack();
  if (!stats.ok()) GTEST_SKIP() << "no conntrack in this kernel: " << stats.status();
  EXPECT_GT(stats->max, 0u);
}

}  // namespace
}  // namespace churnlab
