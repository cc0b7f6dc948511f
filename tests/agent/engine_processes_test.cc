// The engine split over processes: the parts add up to the shard, a snapshot survives its
// encoding, a real split run against an in-process target counts like one engine, and a
// stopped child is killed and counted, not waited on.
#include "agent/engine_processes.h"

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "agent/engine_snapshot_codec.h"
#include "gtest/gtest.h"
#include "target/target_server.h"
#include "tests/support/child_process.h"

namespace churnlab {
namespace {

// The state letter of /proc/PID/stat ('R', 'S', 'T' stopped, 'Z' dead and not reaped), '?'.
char ProcessState(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : '?';
}

EngineParams HeldShard(const SocketAddress& target) {
  EngineParams p;
  p.targets = {target};
  p.concurrency = 1001;
  p.max_connections = 1001;
  p.duration = absl::Seconds(2);
  p.hold = absl::Milliseconds(300);
  p.threads = 3;
  return p;
}

TEST(EngineProcessesTest, PartsAddUpToTheShard) {
  EngineParams p = HeldShard(*SocketAddress::ParseIpPort("127.0.0.1:9"));
  int64_t concurrency = 0, connections = 0, threads = 0;
  for (int i = 0; i < 4; ++i) {
    EngineParams part = PartOf(p, i, 4);
    concurrency += part.concurrency;
    connections += part.max_connections;
    threads += part.threads;
    EXPECT_TRUE(ValidateEngineParams(part).ok());
  }
  EXPECT_EQ(concurrency, 1001);
  EXPECT_EQ(connections, 1001);
  EXPECT_EQ(threads, 4);  // at least one each
  EXPECT_EQ(ProcessesNeeded(p, 20000), 1);
  p.concurrency = 1'000'000;
  EXPECT_EQ(ProcessesNeeded(p, 20000), 51);  // 19,936 connections per process
}

TEST(EngineProcessesTest, ASnapshotSurvivesItsEncoding) {
  EngineSnapshot s;
  s.elapsed_nanos = 123;
  s.in_flight = 7;
  s.held = 5;
  s.sources.resize(2);
  s.sources[1].source = "127.0.0.2";
  s.sources[1].counts.attempted = 9;
  s.sources[1].counts.failures.Add(Phase::kConnect, ECONNREFUSED, 4);
  s.connect_latency.Record(1'000'000);
  s.loop_lag.Record(5);
  EngineSnapshot back;
  ASSERT_TRUE(DecodeSnapshot(EncodeSnapshot(s), &back));
  EXPECT_EQ(back.elapsed_nanos, 123);
  EXPECT_EQ(back.held, 5u);
  EXPECT_EQ(back.sources[1].source, "127.0.0.2");
  EXPECT_EQ(back.sources[1].counts.failures_of(Phase::kConnect, ECONNREFUSED), 4u);
  EXPECT_EQ(back.connect_latency.count(), 1u);
  EXPECT_EQ(back.connect_latency.max(), 1'000'000);
  EXPECT_FALSE(DecodeSnapshot(EncodeSnapshot(s).substr(0, 20), &back));
}

TEST(EngineProcessesTest, ASplitRunCountsLikeOneEngine) {
  TargetParams t;
  t.listen = {*SocketAddress::ParseIpPort("127.0.0.1:0")};
  absl::StatusOr<std::unique_ptr<TargetServer>> target = TargetServer::Create(t);
  ASSERT_TRUE(target.ok()) << target.status();
  (*target)->Start();
  absl::StatusOr<std::unique_ptr<EngineProcesses>> group = EngineProcesses::Create(
      HeldShard((*target)->addresses()[0]), 3, testing::BinaryPath("churnlab-churn"));
  ASSERT_TRUE(group.ok()) << group.status();
  (*group)->Start();
  EngineSnapshot s = (*group)->Wait();
  EXPECT_EQ(s.Total().attempted, 1001u);
  EXPECT_EQ(s.Total().succeeded, 1001u);
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_EQ((*target)->Counters().accepted, 1001u);
}

// A child that stops answering (SIGSTOP) holds up no poll: its last counts stand in for it until
// kAnswerDeadline has passed, then it is killed and counted lost, and the others run to the end.
TEST(EngineProcessesTest, AStoppedChildIsKilledAndCountedLost) {
  TargetParams t;
  t.listen = {*SocketAddress::ParseIpPort("127.0.0.1:0")};
  absl::StatusOr<std::unique_ptr<TargetServer>> target = TargetServer::Create(t);
  ASSERT_TRUE(target.ok()) << target.status();
  (*target)->Start();
  EngineParams p = HeldShard((*target)->addresses()[0]);
  p.duration = absl::Seconds(4);
  p.max_connections = 0;
  absl::StatusOr<std::unique_ptr<EngineProcesses>> group =
      EngineProcesses::Create(p, 3, testing::BinaryPath("churnlab-churn"));
  ASSERT_TRUE(group.ok()) << group.status();
  (*group)->Start();
  ASSERT_EQ((*group)->pids().size(), 3u);
  pid_t stopped = (*group)->pids()[1];
  ASSERT_EQ(kill(stopped, SIGSTOP), 0);
  EngineSnapshot s;
  // Each poll waits kPollWait at most for answers: enough of them outlast kAnswerDeadline.
  int polls = 0;
  while (s.processes_lost == 0 && polls++ < 200) s = (*group)->Snapshot();
  EXPECT_EQ(s.processes, 3u);
  EXPECT_EQ(s.processes_lost, 1u);
  // Killed: SIGKILL wakes a stopped process to die ('R' for a moment, then 'Z' until reaped).
  EXPECT_NE(ProcessState(stopped), 'T');
  s = (*group)->Wait();
  EXPECT_EQ(s.processes_lost, 1u);
  EXPECT_GT(s.Total().succeeded, 0u);
}

// A staged rate profile is split like a plain rate: each process runs every stage at its part
// of the rate, and the whole shard's connections add up to the profile's.
TEST(EngineProcessesTest, AStagedRateIsSplitStageByStage) {
  EngineParams p;
  p.targets = {*SocketAddress::ParseIpPort("127.0.0.1:9")};
  p.stages = {
      {absl::Milliseconds(500), 300}, {absl::Milliseconds(1500), 300}, {absl::Seconds(1), 0}};
  p.rate = 300;
  p.duration = absl::Seconds(3);
  p.max_in_flight = 999;
  ASSERT_TRUE(ValidateEngineParams(p).ok()) << ValidateEngineParams(p);
  EngineParams part = PartOf(p, 1, 3);
  ASSERT_EQ(part.stages.size(), 3u);
  EXPECT_DOUBLE_EQ(part.stages[0].rate, 100);
  EXPECT_DOUBLE_EQ(part.rate, 100);
  EXPECT_TRUE(ValidateEngineParams(part).ok()) << ValidateEngineParams(part);
  std::vector<std::string> args = ChildArgs(part);
  EXPECT_NE(std::find(args.begin(), args.end(), "--stage=1.5s:100"), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(), "--stage=1s:0"), args.end());

  TargetParams t;
  t.listen = {*SocketAddress::ParseIpPort("127.0.0.1:0")};
  absl::StatusOr<std::unique_ptr<TargetServer>> target = TargetServer::Create(t);
  ASSERT_TRUE(target.ok()) << target.status();
  (*target)->Start();
  p.targets = {(*target)->addresses()[0]};
  absl::StatusOr<std::unique_ptr<EngineProcesses>> group =
      EngineProcesses::Create(p, 3, testing::BinaryPath("churnlab-churn"));
  ASSERT_TRUE(group.ok()) << group.status();
  (*group)->Start();
  EngineSnapshot s = (*group)->Wait();
  // 0 -> 300/s over 0.5 s, 300/s for 1.5 s, 300 -> 0/s over 1 s: 75 + 450 + 150 = 675 in all
  // (each process's pacer rounds its own share; a few either way).
  EXPECT_NEAR(static_cast<double>(s.Total().attempted), 675, 6);
  EXPECT_EQ(s.Total().succeeded, s.Total().attempted);
  EXPECT_EQ((*target)->Counters().accepted, s.Total().attempted);
}

TEST(EngineProcessesTest, AChildsRefusalIsTheCreateError) {
  EngineParams p = HeldShard(*SocketAddress::ParseIpPort("127.0.0.1:9"));
  p.bind_mode = BindMode::kNoPort;
  p.source_ips = {*SocketAddress::ParseIp("192.0.2.77")};  // not on this host
  absl::StatusOr<std::unique_ptr<EngineProcesses>> group =
      EngineProcesses::Create(p, 2, testing::BinaryPath("churnlab-churn"));
  ASSERT_FALSE(group.ok());
  EXPECT_NE(group.status().message().find("192.0.2.77"), absl::string_view::npos) << group.status();
}

}  // namespace
}  // namespace churnlab
