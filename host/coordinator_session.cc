#include "host/coordinator_session.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace churnlab {

CoordinatorSession::CoordinatorSession(Options options, Handler* handler)
    : options_(std::move(options)), handler_(handler), last_hello_(options_.hello) {}

CoordinatorSession::~CoordinatorSession() { Shutdown(); }

void CoordinatorSession::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
    return;
  }
  std::fprintf(stderr, "%s: %s\n", options_.program.c_str(), line.c_str());
  std::fflush(stderr);
}

void CoordinatorSession::Run() {
  std::shared_ptr<grpc::Channel> channel =
      options_.channel ? options_.channel
                       : DialCoordinator(options_.coordinator, options_.security);
  auto stub = v1::AgentGateway::NewStub(channel);
  const absl::Duration first = std::max(options_.first_backoff, absl::Milliseconds(1));
  absl::Duration backoff = first;
  while (!shutdown_.load()) {
    absl::Time attempt = options_.now();
    grpc::Status status = Serve(*stub);
    if (shutdown_.load()) break;
    // An attachment that lasted a while earns a fresh, short backoff.
    if (options_.now() - attempt > absl::Seconds(10)) backoff = first;
    const absl::Time redial = options_.now() + backoff;  // before the log line says it
    if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS ||
        status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      Log(absl::StrCat("the coordinator refused this ",
                       options_.hello.observer() ? "observer" : "agent", ": ",
                       status.error_message(), "; retrying in ", absl::FormatDuration(backoff)));
    } else {
      Log(absl::StrFormat("no coordinator at %s (%s); retrying in %s", options_.coordinator,
                          status.error_message(), absl::FormatDuration(backoff)));
    }
    WaitOnClock(redial);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void CoordinatorSession::WaitOnClock(absl::Time due) {
  std::unique_lock<std::mutex> lock(mu_);
  for (absl::Duration left = due - options_.now(); left > absl::ZeroDuration() && !shutdown_.load();
       left = due - options_.now()) {
    cv_.wait_for(lock, absl::ToChronoNanoseconds(std::min(left, kClockPoll)));
  }
}

void CoordinatorSession::Shutdown() {
  shutdown_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  if (context_ != nullptr) context_->TryCancel();
  cv_.notify_all();
}

grpc::Status CoordinatorSession::Serve(v1::AgentGateway::Stub& stub) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub.Attach(&context);
  v1::AgentMessage hello;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_.load()) return grpc::Status::CANCELLED;
    context_ = &context;
    stream_ = stream.get();
    *hello.mutable_hello() = last_hello_;
  }
  std::atomic<bool> attached{true};
  std::thread ticker;
  if (Send(hello)) {
    ticker = std::thread([&] { TickWhile(attached); });
    v1::CoordinatorMessage message;
    bool welcomed = false;
    while (stream->Read(&message)) {
      if (message.has_welcome() && !welcomed) {
        welcomed = true;
        Log(absl::StrCat("attached to ", options_.coordinator, " as ", options_.hello.name()));
      } else if (message.has_assign()) {
        handler_->OnAssign(message.assign());
      } else if (message.has_adjust()) {
        handler_->OnAdjust(message.adjust());
      } else if (message.has_stop()) {
        handler_->OnStop(message.stop());
      } else if (message.has_lease()) {
        handler_->OnLease(message.lease());
      }
    }
  }
  handler_->OnDetached();
  attached.store(false);
  cv_.notify_all();
  if (ticker.joinable()) ticker.join();
  {
    // No Send() may still be writing to the stream when it goes.
    std::lock_guard<std::mutex> write_lock(write_mu_);
    std::lock_guard<std::mutex> lock(mu_);
    context_ = nullptr;
    stream_ = nullptr;
  }
  stream->WritesDone();
  return stream->Finish();
}

void CoordinatorSession::TickWhile(const std::atomic<bool>& attached) {
  // The first sample goes out at once, so a run started right after attaching includes it.
  while (attached.load() && !shutdown_.load()) {
    if (std::optional<v1::ShardTelemetry> telemetry = handler_->OnTick()) {
      v1::AgentMessage message;
      *message.mutable_telemetry() = *std::move(telemetry);
      Send(message);
    }
    RefreshHello();
    if (handler_->ShouldLeave()) {
      Shutdown();
      return;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.telemetry_interval),
                 [&] { return !attached.load() || shutdown_.load(); });
  }
}

namespace {

// Whether two hellos differ in a setting: anything but the host's available memory and the
// agent's idle census, which move a little all the time.
bool SettingsDiffer(v1::Hello a, v1::Hello b) {
  a.clear_mem_available_bytes();
  b.clear_mem_available_bytes();
  a.clear_range_held();
  b.clear_range_held();
  return !google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// Whether a figure moved by more than an eighth of what the coordinator was told (and, for
// small counts, by more than `slack`).
bool Moved(uint64_t told, uint64_t now, uint64_t slack = 0) {
  return (now > told ? now - told : told - now) > std::max(told / 8, slack);
}

// Whether the census moved enough to tell: ports held or TIME_WAIT, by an eighth or 16.
bool CensusMoved(const v1::Hello& told, const v1::Hello& now) {
  if (told.has_range_held() != now.has_range_held()) return true;
  return Moved(told.range_held().in_use(), now.range_held().in_use(), 16) ||
         Moved(told.range_held().time_wait(), now.range_held().time_wait(), 16);
}

}  // namespace

void CoordinatorSession::RefreshHello() {
  if (!options_.refresh_settings) return;
  // One at a time (the ticker and a shard's start both call it): an older reading must not be
  // sent after a newer one.
  std::lock_guard<std::mutex> one_at_a_time(refresh_mu_);
  v1::Hello now = options_.hello;
  options_.refresh_settings(&now);
  bool settings;
  {
    std::lock_guard<std::mutex> lock(mu_);
    settings = SettingsDiffer(now, last_hello_);
    if (!settings && !Moved(last_hello_.mem_available_bytes(), now.mem_available_bytes()) &&
        !CensusMoved(last_hello_, now)) {
      return;
    }
    last_hello_ = now;  // also what the next attachment says
  }
  v1::AgentMessage message;
  *message.mutable_hello() = std::move(now);
  Send(message);
  if (settings) Log("settings changed; told the coordinator");
}

bool CoordinatorSession::Send(const v1::AgentMessage& message) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  Stream* stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream = stream_;
  }
  return stream != nullptr && stream->Write(message);
}

}  // namespace churnlab
