#include "agent/engine_processes.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/engine_pipe.h"
#include "agent/port_picker.h"
#include "common/child_processes.h"
#include "common/fd_limit.h"
#include "common/status_macros.h"
#include "proto/engine_codec.h"

extern char** environ;

namespace churnlab {
namespace {

int64_t ShareOf(int64_t total, int index, int count) {
  return total / count + (index < total % count ? 1 : 0);
}

// One order, written whole or not at all: at most PIPE_BUF bytes to a non-blocking pipe. A child
// that is not reading (stopped) or gone misses it; EPIPE needs SIGPIPE ignored (the agent does).
bool WriteOrder(int fd, const char* order, size_t size) {
  ssize_t n;
  do {
    n = write(fd, order, size);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(size);
}

using Deadline = std::chrono::steady_clock::time_point;

Deadline DeadlineIn(absl::Duration d) {
  return std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(d);
}

// Appends what the non-blocking `fd` holds to `inbox`; false once the pipe has ended (the
// child is gone).
bool ReadAvailable(int fd, std::string& inbox) {
  char buffer[64 * 1024];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return false;
    inbox.append(buffer, static_cast<size_t>(n));
  }
}

// A child's first answer, by `deadline`: OK when it validated its part; its refusal as
// FAILED_PRECONDITION; DEADLINE_EXCEEDED for a child stopped or wedged at its start.
absl::Status AwaitFirstAnswer(int fd, pid_t pid, std::string& inbox, Deadline deadline) {
  v1::EngineAnswer first;
  bool open = true, bad = false, whole = false;
  while (!(whole = TakeDelimited(inbox, kMaxEngineAnswerBytes, &first, &bad)) && open && !bad) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "engine process ", pid, " did not start within ",
          absl::FormatDuration(EngineProcesses::kStartDeadline), " (stopped or wedged)"));
    }
    pollfd readable = {fd, POLLIN, 0};
    if (poll(&readable, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
      return absl::ErrnoToStatus(errno, "poll on an engine process's pipe");
    }
    open = ReadAvailable(fd, inbox);
  }
  if (!whole) return absl::InternalError(absl::StrCat("engine process ", pid, " ended at start"));
  if (first.status() == v1::EngineAnswer::STATUS_ERROR) {
    return absl::FailedPreconditionError(first.error());
  }
  return absl::OkStatus();
}

// Writes all of `bytes` to the non-blocking `fd` by `deadline`: the part of the shard, which
// may be larger than the pipe holds, to a child that reads it as it starts.
absl::Status WriteBy(int fd, absl::string_view bytes, pid_t pid, Deadline deadline) {
  while (!bytes.empty()) {
    ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return absl::ErrnoToStatus(errno, absl::StrCat("writing to engine process ", pid));
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "engine process ", pid, " did not read its part within ",
          absl::FormatDuration(EngineProcesses::kStartDeadline), " (stopped or wedged)"));
    }
    pollfd writable = {fd, POLLOUT, 0};
    poll(&writable, 1, static_cast<int>(left.count()));
  }
  return absl::OkStatus();
}

// An order as one frame.
std::string OrderFrame(void (v1::EngineOrder::*set)(bool)) {
  v1::EngineOrder order;
  (order.*set)(true);
  return DelimitedFrame(order);
}

}  // namespace

EngineParams PartOf(const EngineParams& params, int index, int count) {
  EngineParams p = params;
  p.concurrency = ShareOf(params.concurrency, index, count);
  p.max_in_flight = ShareOf(params.max_in_flight, index, count);
  p.max_connections = ShareOf(params.max_connections, index, count);
  p.rate = params.rate / count;
  p.max_rate = params.max_rate / count;
  for (RateStage& stage : p.stages) stage.rate /= count;
  p.threads = std::max<int>(1, static_cast<int>(ShareOf(params.threads, index, count)));
  // Bind mode engine: each process picks from a slice of its own, so no two pick one port.
  if (p.bind_mode == BindMode::kEngine) {
    std::tie(p.ports.low, p.ports.high) =
        PortSlice(params.ports.low, params.ports.high, index, count);
  }
  return p;
}

int ProcessesNeeded(const EngineParams& params, uint64_t fd_limit) {
  uint64_t held =
      static_cast<uint64_t>(params.rate > 0 ? params.max_in_flight : params.concurrency);
  return static_cast<int>(ProcessesFor(held, fd_limit));
}

absl::StatusOr<std::unique_ptr<EngineProcesses>> EngineProcesses::Create(
    const EngineParams& params, int count, const std::string& churn_path) {
  // An engine process that died must be a failed write here, not the agent's death.
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<EngineProcesses> group(new EngineProcesses(params));
  // No flags: each child reads its part from its stdin (EngineParams, one delimited message).
  std::string name = "churnlab-churn", child_flag = "--child";
  char* argv[] = {name.data(), child_flag.data(), nullptr};
  for (int i = 0; i < count; ++i) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
    if (pipe2(out, O_CLOEXEC) != 0) {
      absl::Status status = absl::ErrnoToStatus(errno, "pipe2");
      close(in[0]);
      close(in[1]);
      return status;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    Child& child = group->children_.emplace_back();
    int rc = posix_spawn(&child.pid, churn_path.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    child.to = in[1];
    child.from = out[0];
    if (rc != 0) {
      child.pid = -1;
      return absl::ErrnoToStatus(rc, absl::StrCat("starting ", churn_path));
    }
    // Orders never block the agent on a child that does not read them, and reads never wait on
    // one child (PollLocked).
    for (int fd : {child.to, child.from}) {
      if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        return absl::ErrnoToStatus(errno, "fcntl(O_NONBLOCK) on an engine process's pipe");
      }
    }
  }
  // Each child reads its part, validates it and says so in its first answer. On an error the
  // group's destructor ends every child, a stopped one too.
  Deadline deadline = DeadlineIn(kStartDeadline);
  for (int i = 0; i < count; ++i) {
    Child& child = group->children_[i];
    std::string part = DelimitedFrame(EngineParamsToProto(PartOf(params, i, count)));
    RETURN_IF_ERROR(WriteBy(child.to, part, child.pid, deadline));
  }
  for (Child& child : group->children_) {
    RETURN_IF_ERROR(AwaitFirstAnswer(child.from, child.pid, child.inbox, deadline));
  }
  return group;
}

EngineProcesses::~EngineProcesses() {
  for (Child& child : children_) {
    if (child.to >= 0) close(child.to);  // EOF: the child stops and exits
  }
  std::vector<pid_t> pids;
  for (Child& child : children_) {
    if (child.from >= 0) close(child.from);
    pids.push_back(child.pid);
  }
  ReapOrKill(pids, kAnswerDeadline);
}

std::vector<pid_t> EngineProcesses::pids() const {
  std::vector<pid_t> pids;
  for (const Child& child : children_) pids.push_back(child.pid);
  return pids;
}

void EngineProcesses::SendAll(const std::string& order) {
  std::lock_guard<std::mutex> lock(write_mu_);
  for (Child& child : children_) {
    if (!child.done.load()) WriteOrder(child.to, order.data(), order.size());
  }
}

void EngineProcesses::ExtendLease(int64_t until_nanos) {
  v1::EngineOrder order;
  order.set_lease_until_nanos(until_nanos);
  SendAll(DelimitedFrame(order));
}

bool EngineProcesses::UpdateDestinations(const DestinationUpdate& update) {
  std::lock_guard<std::mutex> lock(write_mu_);
  if (!UpdateFits(update, destinations_, params_.targets.front().family())) return false;
  destinations_ += update.added.size();
  for (const std::string& order : DestinationOrders(update)) {
    for (Child& child : children_) {
      if (!child.done.load()) WriteOrder(child.to, order.data(), order.size());
    }
  }
  return true;
}

void EngineProcesses::Start() {
  static const std::string kStart = OrderFrame(&v1::EngineOrder::set_start);
  std::lock_guard<std::mutex> lock(mu_);
  SendAll(kStart);
  started_ = true;
}

void EngineProcesses::Stop() {
  static const std::string kStop = OrderFrame(&v1::EngineOrder::set_stop);
  std::lock_guard<std::mutex> lock(mu_);
  SendAll(kStop);
}

void EngineProcesses::AskLocked(std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> lock(write_mu_);
  for (Child& child : children_) {
    if (child.done.load() || child.asked) continue;
    // A child whose pipe is full has not read its orders for a long time: it is asked all the
    // same, and its deadline runs.
    static const std::string kPoll = OrderFrame(&v1::EngineOrder::set_poll);
    WriteOrder(child.to, kPoll.data(), kPoll.size());
    child.asked = true;
    child.asked_at = now;
  }
}

void EngineProcesses::ReadLocked(Child& child) {
  bool open = ReadAvailable(child.from, child.inbox);
  bool bad = false;
  // Only the latest whole answer counts.
  v1::EngineAnswer answer;
  while (TakeDelimited(child.inbox, kMaxEngineAnswerBytes, &answer, &bad)) {
    EngineSnapshot snapshot;
    if (SnapshotFromProto(answer.snapshot(), &snapshot)) child.last = std::move(snapshot);
    child.asked = false;
    child.done.store(answer.status() == v1::EngineAnswer::STATUS_DONE);
  }
  if (bad) kill(child.pid, SIGKILL);
  // Gone (or garbled) before its final frame: its counts are those of the last frame it wrote.
  if ((bad || !open) && !child.done.load()) {
    child.lost = true;
    child.done.store(true);
  }
}

EngineSnapshot EngineProcesses::PollLocked(absl::Duration wait) {
  auto now = std::chrono::steady_clock::now();
  AskLocked(now);
  // Answers that come within `wait`; a child that has not answered yet keeps its last counts.
  Deadline deadline = now + absl::ToChronoNanoseconds(wait);
  while (true) {
    std::vector<pollfd> waiting;
    std::vector<Child*> of;
    for (Child& child : children_) {
      if (child.done.load() || !child.asked) continue;
      waiting.push_back({child.from, POLLIN, 0});
      of.push_back(&child);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (waiting.empty() || left.count() <= 0) break;
    int ready = poll(waiting.data(), waiting.size(), static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    for (size_t i = 0; i < waiting.size(); ++i) {
      if (waiting[i].revents != 0) ReadLocked(*of[i]);
    }
  }
  // Stopped or wedged: asked longer ago than the deadline. Ended, so that it can start nothing
  // more (SIGKILL works on a stopped process); its counts are those of its last frame.
  for (Child& child : children_) {
    if (child.done.load() || !child.asked ||
        std::chrono::steady_clock::now() - child.asked_at <
            absl::ToChronoNanoseconds(kAnswerDeadline)) {
      continue;
    }
    kill(child.pid, SIGKILL);
    child.lost = true;
    child.done.store(true);
  }
  EngineSnapshot merged;
  for (const Child& child : children_) {
    merged.Merge(child.last);
    merged.processes_lost += child.lost ? 1 : 0;
  }
  merged.processes = static_cast<uint32_t>(children_.size());
  return merged;
}

bool EngineProcesses::AllDoneLocked() const {
  return std::all_of(children_.begin(), children_.end(),
                     [](const Child& c) { return c.done.load(); });
}

EngineSnapshot EngineProcesses::Snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  return PollLocked(kPollWait);
}

bool EngineProcesses::Done() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_) return false;
  PollLocked(kPollWait);
  return AllDoneLocked();
}

EngineSnapshot EngineProcesses::Wait() {
  while (true) {
    std::lock_guard<std::mutex> lock(mu_);
    EngineSnapshot merged = PollLocked(absl::Milliseconds(100));
    if (AllDoneLocked()) return merged;
  }
}

}  // namespace churnlab
