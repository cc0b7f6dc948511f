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
#include "agent/engine_snapshot_codec.h"
#include "common/child_processes.h"
#include "common/fd_limit.h"
#include "common/status_macros.h"

extern char** environ;

namespace churnlab {
namespace {

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

using Deadline = std::chrono::steady_clock::time_point;

Deadline DeadlineIn(absl::Duration d) {
  return std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(d);
}

// A frame as a child writes it (WriteChildFrame).
struct Frame {
  ChildStatus status;
  std::string payload;
};

// The whole frame at the front of `inbox`, taken off it; nullopt while it is still coming, or
// with *bad set when its length is past any snapshot's (64 MiB): the stream is not to be trusted.
std::optional<Frame> TakeFrame(std::string& inbox, bool* bad) {
  if (inbox.size() < 9) return std::nullopt;
  uint64_t length = 0;
  std::memcpy(&length, inbox.data(), 8);
  *bad = length > (64u << 20);
  if (*bad || inbox.size() < 9 + length) return std::nullopt;
  Frame frame{static_cast<ChildStatus>(inbox[8]), inbox.substr(9, length)};
  inbox.erase(0, 9 + length);
  return frame;
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

// A child's first frame, by `deadline`: OK when it validated its part; its refusal as
// FAILED_PRECONDITION; DEADLINE_EXCEEDED for a child stopped or wedged at its start.
absl::Status AwaitFirstFrame(int fd, pid_t pid, std::string& inbox, Deadline deadline) {
  std::optional<Frame> first;
  bool open = true, bad = false;
  while (!(first = TakeFrame(inbox, &bad)) && open && !bad) {
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
  if (!first) return absl::InternalError(absl::StrCat("engine process ", pid, " ended at start"));
  if (first->status == ChildStatus::kError) return absl::FailedPreconditionError(first->payload);
  return absl::OkStatus();
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

// What each connection does after connect(): the request, the expected status, TLS.
void AddExchangeArgs(const EngineParams& p, std::vector<std::string>* args) {
  if (!p.target_names.empty()) {
    args->push_back(absl::StrCat("--target-names=", absl::StrJoin(p.target_names, ",")));
  }
  if (SpeaksHttp(p.protocol)) {
    args->push_back(absl::StrCat("--method=", p.request.method));
    args->push_back(absl::StrCat("--path=", p.request.path));
    for (const std::string& h : p.request.headers) args->push_back(absl::StrCat("--header=", h));
    if (!p.request.body.empty()) {
      args->push_back(absl::StrCat("--body-base64=", absl::Base64Escape(p.request.body)));
    }
    args->push_back(absl::StrCat("--expect-status=", p.expect_status));
  }
  if (UsesTls(p.protocol)) {
    if (p.tls.insecure) args->push_back("--insecure");
    if (!p.tls.ca_file.empty()) args->push_back(absl::StrCat("--target-ca=", p.tls.ca_file));
    args->push_back(absl::StrCat("--tls-resumption=", RateText(p.tls.resumption)));
  }
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
  AddExchangeArgs(p, &args);
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
  return static_cast<int>(ProcessesFor(held, fd_limit));
}

namespace {

// A spec's CA certificates, for engine processes to load (too big for argv): a file only this
// user can read, removed once every process has loaded it.
class CaFile {
 public:
  ~CaFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  absl::Status Write(const std::string& pem) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/churnlab-ca.XXXXXX");
    int fd = mkstemp(templ.data());
    if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("mkstemp ", templ));
    path_ = templ;
    bool ok = WriteAll(fd, pem.data(), pem.size());
    int err = errno;
    if (close(fd) != 0 || !ok) return absl::ErrnoToStatus(err, absl::StrCat("writing ", path_));
    return absl::OkStatus();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<EngineProcesses>> EngineProcesses::Create(
    const EngineParams& params, int count, const std::string& churn_path) {
  // An engine process that died must be a failed write here, not the agent's death.
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<EngineProcesses> group(new EngineProcesses(params));
  EngineParams shared = params;
  CaFile ca;
  if (!params.tls.ca_pem.empty()) {
    RETURN_IF_ERROR(ca.Write(params.tls.ca_pem));
    shared.tls.ca_pem.clear();
    shared.tls.ca_file = ca.path();
  }
  for (int i = 0; i < count; ++i) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
    if (pipe2(out, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
    std::vector<std::string> args = ChildArgs(PartOf(shared, i, count));
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
    // Orders never block the agent on a child that does not read them, and reads never wait on
    // one child (PollLocked).
    for (int fd : {child.to, child.from}) {
      if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        return absl::ErrnoToStatus(errno, "fcntl(O_NONBLOCK) on an engine process's pipe");
      }
    }
  }
  // Each child validates its part and says so in its first frame. On an error the group's
  // destructor ends every child, a stopped one too.
  Deadline deadline = DeadlineIn(kStartDeadline);
  for (Child& child : group->children_) {
    RETURN_IF_ERROR(AwaitFirstFrame(child.from, child.pid, child.inbox, deadline));
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

void EngineProcesses::SendAll(char order) {
  std::lock_guard<std::mutex> lock(write_mu_);
  for (Child& child : children_) {
    if (!child.done.load()) WriteOrder(child.to, &order, 1);
  }
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

void EngineProcesses::AskLocked(std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> lock(write_mu_);
  for (Child& child : children_) {
    if (child.done.load() || child.asked) continue;
    // A child whose pipe is full has not read its orders for a long time: it is asked all the
    // same, and its deadline runs.
    char order = 'P';
    WriteOrder(child.to, &order, 1);
    child.asked = true;
    child.asked_at = now;
  }
}

void EngineProcesses::ReadLocked(Child& child) {
  bool open = ReadAvailable(child.from, child.inbox);
  bool bad = false;
  // Only the latest whole frame counts.
  while (std::optional<Frame> frame = TakeFrame(child.inbox, &bad)) {
    EngineSnapshot snapshot;
    if (DecodeSnapshot(frame->payload, &snapshot)) child.last = std::move(snapshot);
    child.asked = false;
    child.done.store(frame->status == ChildStatus::kDone);
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
