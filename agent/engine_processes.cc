#include "agent/engine_processes.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/engine_snapshot_codec.h"

extern char** environ;

namespace churnlab {
namespace {

// fds a child needs besides its connections: epoll per thread, stdio, the allocator's slack.
constexpr uint64_t kReservedFds = 64;

int64_t ShareOf(int64_t total, int index, int count) {
  return total / count + (index < total % count ? 1 : 0);
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
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

bool ReadAll(int fd, char* data, size_t size) {
  while (size > 0) {
    ssize_t n = read(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// One frame from a child; false when its pipe broke (the child died).
bool ReadChildFrame(int fd, ChildStatus* status, std::string* payload) {
  uint64_t length = 0;
  uint8_t code = 0;
  if (!ReadAll(fd, reinterpret_cast<char*>(&length), 8) || length > (64u << 20)) return false;
  if (!ReadAll(fd, reinterpret_cast<char*>(&code), 1)) return false;
  payload->resize(length);
  if (!ReadAll(fd, payload->data(), length)) return false;
  *status = static_cast<ChildStatus>(code);
  return true;
}

// Durations and rates as the child's flags read them back exactly.
std::string DurationText(absl::Duration d) { return absl::FormatDuration(d); }
std::string RateText(double rate) { return absl::StrFormat("%.17g", rate); }

}  // namespace

bool WriteChildFrame(int fd, ChildStatus status, const std::string& payload) {
  uint64_t length = payload.size();
  char code = static_cast<char>(status);
  return WriteAll(fd, reinterpret_cast<const char*>(&length), 8) && WriteAll(fd, &code, 1) &&
         WriteAll(fd, payload.data(), payload.size());
}

std::vector<std::string> ChildArgs(const EngineParams& p) {
  std::vector<std::string> targets, sources;
  for (const SocketAddress& t : p.targets) targets.push_back(t.ToString());
  for (const SocketAddress& s : p.source_ips) sources.push_back(s.IpString());
  std::vector<std::string> args = {
      "churnlab-churn", "--child", "--progress=false",
      // The agent checked its allow-list before splitting the shard.
      "--allow-targets=0.0.0.0/0,::/0", absl::StrCat("--target=", absl::StrJoin(targets, ",")),
      absl::StrCat("--bind=", BindModeName(p.bind_mode)),
      absl::StrCat("--protocol=", ProtocolName(p.protocol)),
      absl::StrCat("--close=", ClosePolicyName(p.close_policy)),
      absl::StrCat("--duration=", DurationText(p.duration)),
      absl::StrCat("--requests-per-connection=", p.requests_per_connection),
      absl::StrCat("--connect-timeout=", DurationText(p.connect_timeout)),
      absl::StrCat("--io-timeout=", DurationText(p.io_timeout)),
      absl::StrCat("--hold=", DurationText(p.hold)),
      absl::StrCat("--max-connections=", p.max_connections), absl::StrCat("--threads=", p.threads),
      absl::StrCat("--max-rate=", RateText(p.max_rate)),
      absl::StrCat("--leased=", p.leased ? "true" : "false")};
  if (!sources.empty()) args.push_back(absl::StrCat("--source-ips=", absl::StrJoin(sources, ",")));
  if (p.rate > 0) {
    args.push_back(absl::StrCat("--rate=", RateText(p.rate)));
    args.push_back(absl::StrCat("--ramp-up=", DurationText(p.ramp_up)));
    for (const RateStage& stage : p.stages) {
      args.push_back(absl::StrCat("--stage=", RateStageText(stage)));
    }
    args.push_back(absl::StrCat("--max-in-flight=", p.max_in_flight));
  } else {
    args.push_back(absl::StrCat("--concurrency=", p.concurrency));
  }
  return args;
}

EngineParams PartOf(const EngineParams& params, int index, int count) {
  EngineParams p = params;
  p.concurrency = ShareOf(params.concurrency, index, count);
  p.max_in_flight = ShareOf(params.max_in_flight, index, count);
  p.max_connections = ShareOf(params.max_connections, index, count);
  p.rate = params.rate / count;
  p.max_rate = params.max_rate / count;
  for (RateStage& stage : p.stages) stage.rate /= count;
  p.threads = std::max<int>(1, static_cast<int>(ShareOf(params.threads, index, count)));
  return p;
}

int ProcessesNeeded(const EngineParams& params, uint64_t fd_limit) {
  uint64_t held =
      static_cast<uint64_t>(params.rate > 0 ? params.max_in_flight : params.concurrency);
  uint64_t per_process = fd_limit > 2 * kReservedFds ? fd_limit - kReservedFds : fd_limit / 2;
  if (per_process == 0) return 1;
  return static_cast<int>(std::max<uint64_t>(1, (held + per_process - 1) / per_process));
}

absl::StatusOr<std::unique_ptr<EngineProcesses>> EngineProcesses::Create(
    const EngineParams& params, int count, const std::string& churn_path) {
  // An engine process that died must be a failed write here, not the agent's death.
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<EngineProcesses> group(new EngineProcesses(params));
  for (int i = 0; i < count; ++i) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
    if (pipe2(out, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
    std::vector<std::string> args = ChildArgs(PartOf(params, i, count));
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    Child& child = group->children_.emplace_back();
    int rc = posix_spawn(&child.pid, churn_path.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    child.to = in[1];
    child.from = out[0];
    if (rc != 0) {
      child.pid = -1;
      return absl::ErrnoToStatus(rc, absl::StrCat("starting ", churn_path));
    }
    // Orders never block the agent on a child that does not read them.
    if (fcntl(child.to, F_SETFL, O_NONBLOCK) != 0) {
      return absl::ErrnoToStatus(errno, "fcntl(O_NONBLOCK) on an engine process's pipe");
    }
  }
  // Each child validates its part and says so in its first frame.
  for (Child& child : group->children_) {
    ChildStatus status;
    std::string payload;
    if (!ReadChildFrame(child.from, &status, &payload)) {
      return absl::InternalError(absl::StrCat("engine process ", child.pid, " ended at start"));
    }
    if (status == ChildStatus::kError) return absl::FailedPreconditionError(payload);
  }
  return group;
}

EngineProcesses::~EngineProcesses() {
  for (Child& child : children_) {
    if (child.to >= 0) close(child.to);  // EOF: the child stops and exits
  }
  for (Child& child : children_) {
    if (child.from >= 0) close(child.from);
    if (child.pid > 0) waitpid(child.pid, nullptr, 0);
  }
}

std::vector<bool> EngineProcesses::SendAll(char order) {
  std::lock_guard<std::mutex> lock(write_mu_);
  std::vector<bool> took;
  for (Child& child : children_)
    took.push_back(!child.done.load() && WriteOrder(child.to, &order, 1));
  return took;
}

void EngineProcesses::ExtendLease(int64_t until_nanos) {
  char order[9] = {'L'};
  std::memcpy(order + 1, &until_nanos, sizeof(until_nanos));
  std::lock_guard<std::mutex> lock(write_mu_);
  for (Child& child : children_) {
    if (!child.done.load()) WriteOrder(child.to, order, sizeof(order));
  }
}

void EngineProcesses::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  SendAll('S');
  started_ = true;
}

void EngineProcesses::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  SendAll('X');
}

EngineSnapshot EngineProcesses::PollLocked() {
  std::vector<bool> asked = SendAll('P');
  for (size_t i = 0; i < children_.size(); ++i) {
    Child& child = children_[i];
    // A child whose pipe is full has not read its orders for a long time: no frame is coming.
    if (child.done || !asked[i]) continue;
    ChildStatus status;
    std::string payload;
    EngineSnapshot snapshot;
    if (!ReadChildFrame(child.from, &status, &payload)) {
      child.done.store(true);  // died: its counts are those of its last frame
      continue;
    }
    if (DecodeSnapshot(payload, &snapshot)) child.last = std::move(snapshot);
    child.done.store(status == ChildStatus::kDone);
  }
  EngineSnapshot merged;
  for (const Child& child : children_) merged.Merge(child.last);
  return merged;
}

bool EngineProcesses::AllDoneLocked() const {
  return std::all_of(children_.begin(), children_.end(),
                     [](const Child& c) { return c.done.load(); });
}

EngineSnapshot EngineProcesses::Snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  return PollLocked();
}

bool EngineProcesses::Done() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_) return false;
  PollLocked();
  return AllDoneLocked();
}

EngineSnapshot EngineProcesses::Wait() {
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      EngineSnapshot merged = PollLocked();
      if (AllDoneLocked()) return merged;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace churnlab
