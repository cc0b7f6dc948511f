// The churn engine in several processes, seen as one: each process has a fd limit of its own
// (RLIMIT_NOFILE's hard limit may be far below a million), so a shard that holds more
// connections than one process may open is split over `churnlab-churn --child` processes. They
// talk over pipes in protobuf (proto/churnlab/v1/engine.proto, length-delimited): the process's
// part of the shard (EngineParams) and then orders (EngineOrder: start, poll, stop, a lease's
// end) in, answers (EngineAnswer: running, done or its error, with a snapshot) out. The agent
// merges their snapshots into one, so the coordinator sees one agent.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/shard_engine.h"

namespace churnlab {

// Part `index` of `count` of `params`: concurrency, max_in_flight and max_connections split
// exactly, rate, max_rate and each stage's rate in equal parts, threads spread (at least one
// each).
EngineParams PartOf(const EngineParams& params, int index, int count);

// Processes needed so that none holds more than `fd_limit` minus a reserve.
int ProcessesNeeded(const EngineParams& params, uint64_t fd_limit);

class EngineProcesses final : public ShardEngine {
 public:
  // How long a child has to answer a poll, and to exit once told to. One that has not is
  // stopped or wedged: it is killed (SIGKILL) and counted lost (EngineSnapshot::processes_lost).
  // Meanwhile a snapshot carries its last counts, so the agent's telemetry and pings go on.
  static constexpr absl::Duration kAnswerDeadline = absl::Seconds(2);
  // How long Snapshot() and Done() wait for the children's answers.
  static constexpr absl::Duration kPollWait = absl::Milliseconds(200);
  // How long the children have to validate their parts at the start.
  static constexpr absl::Duration kStartDeadline = absl::Seconds(5);
  // Starts `count` children of `churn_path`, each with its part, and waits until each has
  // validated its part (the child's error as INVALID_ARGUMENT or FAILED_PRECONDITION, an errno
  // status when a process cannot start).
  static absl::StatusOr<std::unique_ptr<EngineProcesses>> Create(const EngineParams& params,
                                                                 int count,
                                                                 const std::string& churn_path);
  ~EngineProcesses() override;

  void Start() override;
  EngineSnapshot Snapshot() override;
  void Stop() override;
  // Not carried to the children: a lost agent's share is not handed on to a split shard.
  bool ChangeRate(double) override { return false; }
  // Sends the update to every child not done as orders (DestinationOrders), each one write that
  // is dropped when the child is not reading: a child that misses one keeps its destinations.
  bool UpdateDestinations(const DestinationUpdate& update) override;
  // Written to every child without waiting on any (a stopped child misses it, and its own lease
  // lapses).
  void ExtendLease(int64_t until_nanos) override;
  bool Done() override;
  EngineSnapshot Wait() override;
  const EngineParams& params() const override { return params_; }
  // The children's process ids, in the order of their parts.
  std::vector<pid_t> pids() const;

 private:
  struct Child {
    pid_t pid = -1;
    int to = -1;    // its stdin
    int from = -1;  // its stdout
    EngineSnapshot last;
    std::atomic<bool> done{false};
    bool lost = false;   // gave no answer in time (killed) or died before its last frame
    bool asked = false;  // a poll it has not answered yet, since asked_at
    std::chrono::steady_clock::time_point asked_at;
    std::string inbox;  // bytes of a frame still coming
  };
  explicit EngineProcesses(EngineParams params) : params_(std::move(params)) {}
  // Writes `order` (one frame) to every child not done.
  void SendAll(const std::string& order);
  // Asks every child not done that has answered its last poll for a frame. Holds mu_.
  void AskLocked(std::chrono::steady_clock::time_point now);
  // Reads what `child` has written; keeps its latest whole frame. Holds mu_.
  void ReadLocked(Child& child);
  // Asks, reads the answers that come within `wait`, kills a child asked longer than
  // kAnswerDeadline ago, and merges the latest snapshots. Holds mu_.
  EngineSnapshot PollLocked(absl::Duration wait);
  bool AllDoneLocked() const;

  EngineParams params_;
  std::mutex mu_;  // one poll at a time; the children's snapshots
  // Orders go out under write_mu_ alone, so ExtendLease never waits behind a poll that waits for
  // a child. Each order is one write() of a few bytes (under PIPE_BUF) to a non-blocking pipe:
  // atomic, and dropped when the child is not reading.
  std::mutex write_mu_;
  std::deque<Child> children_;                    // fixed once Create() returns
  size_t destinations_ = params_.targets.size();  // the children's table size; under write_mu_
  bool started_ = false;
};

}  // namespace churnlab
