#include "agent/agent_session.h"

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/host_facts.h"
#include "agent/shard_telemetry.h"
#include "proto/grpc_link.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

}  // namespace

void AgentSession::Log(const std::string& line) const {
  std::fprintf(stderr, "%s: %s\n", options_.program.c_str(), line.c_str());
  std::fflush(stderr);
}

AgentSession::AgentSession(Options options)
    : options_(std::move(options)), last_hello_(options_.hello) {}

AgentSession::~AgentSession() {
  Shutdown();
  StopShard();
}

void AgentSession::Run() {
  std::shared_ptr<grpc::Channel> channel = DialCoordinator(options_.coordinator, options_.security);
  auto stub = v1::AgentGateway::NewStub(channel);
  absl::Duration backoff = absl::Milliseconds(250);
  while (!shutdown_.load()) {
    absl::Time attempt = absl::Now();
    grpc::Status status = Serve(*stub);
    StopShard();  // never keep loading a target without a coordinator
    if (shutdown_.load()) break;
    // An attachment that lasted a while earns a fresh, short backoff.
    if (absl::Now() - attempt > absl::Seconds(10)) backoff = absl::Milliseconds(250);
    if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS ||
        status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      Log(absl::StrCat("the coordinator refused this agent: ", status.error_message()));
    } else {
      Log(absl::StrFormat("no coordinator at %s (%s); retrying in %s", options_.coordinator,
                          status.error_message(), absl::FormatDuration(backoff)));
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(backoff), [&] { return shutdown_.load(); });
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void AgentSession::Shutdown() {
  shutdown_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  if (context_ != nullptr) context_->TryCancel();
  stop_requested_ = true;
  cv_.notify_all();
}

grpc::Status AgentSession::Serve(v1::AgentGateway::Stub& stub) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub.Attach(&context);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_.load()) return grpc::Status::CANCELLED;
    context_ = &context;
    stream_ = stream.get();
  }
  v1::AgentMessage hello;
  {
    std::lock_guard<std::mutex> lock(mu_);
    *hello.mutable_hello() = last_hello_;
  }
  std::atomic<bool> attached{true};
  std::thread ticker;
  if (Write(hello)) {
    ticker = std::thread([&] { TickWhile(attached); });
    v1::CoordinatorMessage message;
    bool welcomed = false;
    while (stream->Read(&message)) {
      if (message.has_welcome() && !welcomed) {
        welcomed = true;
        Log(absl::StrCat("attached to ", options_.coordinator, " as ", options_.hello.name()));
      } else if (message.has_assign()) {
        OnAssign(message.assign());
      } else if (message.has_adjust()) {
        OnAdjust(message.adjust());
      } else if (message.has_stop()) {
        std::lock_guard<std::mutex> lock(mu_);
        if (running_run_ == message.stop().run_id()) stop_requested_ = true;
        cv_.notify_all();
      }
    }
  }
  // The dead-man switch: never keep loading a target without a coordinator.
  std::string interrupted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted = running_run_;
  }
  StopShard();
  if (!interrupted.empty() && !shutdown_.load()) {
    Log(absl::StrCat("run ", interrupted, ": lost the coordinator; stopped all load"));
  }
  attached.store(false);
  cv_.notify_all();
  if (ticker.joinable()) ticker.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = nullptr;
    stream_ = nullptr;
  }
  stream->WritesDone();
  return stream->Finish();
}

absl::Status AgentSession::CheckShard(const v1::Shard& shard, EngineParams* params) const {
  absl::StatusOr<EngineParams> p = EngineParamsFromShard(shard);
  if (!p.ok()) return p.status();
  if (absl::Status allowed = CheckTargetsAllowed(p->targets, options_.allow_targets);
      !allowed.ok()) {
    return allowed;
  }
  if (options_.max_rate > 0 && shard.rate() > options_.max_rate) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "rate %.1f conn/s is above this agent's --max-rate %.1f", shard.rate(), options_.max_rate));
  }
  int64_t in_flight = p->rate > 0 ? p->max_in_flight : p->concurrency;
  if (options_.max_in_flight > 0 && in_flight > options_.max_in_flight) {
    return absl::PermissionDeniedError(
        absl::StrCat(p->rate > 0 ? "max_in_flight " : "concurrency ", in_flight,
                     " is above this agent's --max-in-flight ", options_.max_in_flight));
  }
  // The closed model has no rate to check: the engine paces its starts under the cap.
  p->max_rate = options_.max_rate;
  for (const SocketAddress& ip : p->source_ips) {
    bool offered = false;
    for (const std::string& own : options_.hello.source_ips())
      offered = offered || own == ip.IpString();
    if (!offered) {
      return absl::PermissionDeniedError(
          absl::StrCat("source IP ", ip.IpString(), " is not one this agent offers"));
    }
  }
  p->threads = std::min<int>(options_.threads, p->rate > 0 ? p->max_in_flight : p->concurrency);
  *params = *std::move(p);
  return absl::OkStatus();
}

void AgentSession::OnAssign(const v1::Shard& shard) {
  auto refuse = [&](const std::string& reason) {
    Log(absl::StrCat("refused run ", shard.run_id(), ": ", reason));
    v1::AgentMessage message;
    message.mutable_refusal()->set_run_id(shard.run_id());
    message.mutable_refusal()->set_reason(reason);
    Write(message);
  };
  if (options_.observer_telemetry) return refuse("an observer (churnlab-target) runs no load");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_run_.empty()) return refuse(absl::StrCat("busy with run ", running_run_));
  }
  EngineParams params;
  if (absl::Status s = CheckShard(shard, &params); !s.ok()) return refuse(std::string(s.message()));
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(params);
  if (!engine.ok()) return refuse(std::string(engine.status().message()));
  StopShard();  // joins a finished previous shard thread
  std::lock_guard<std::mutex> lock(mu_);
  running_run_ = shard.run_id();
  stop_requested_ = false;
  absl::Duration start_after =
      absl::Nanoseconds(TimeUtil::DurationToNanoseconds(shard.start_after()));
  shard_thread_ =
      std::thread(&AgentSession::RunShard, this, shard.run_id(), *std::move(engine), start_after);
}

void AgentSession::RunShard(std::string run_id, std::unique_ptr<Engine> engine,
                            absl::Duration start_after) {
  Log(absl::StrCat("run ", run_id, ": starting in ", absl::FormatDuration(start_after)));
  bool stopped_before_start;
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopped_before_start =
        cv_.wait_for(lock, absl::ToChronoNanoseconds(start_after), [&] { return stop_requested_; });
  }
  auto [low, high] = LocalPortRange();
  ShardTelemetryCollector telemetry(run_id, engine->params().targets,
                                    high >= low && low > 0 ? high - low + 1 : 0);
  if (!stopped_before_start) {
    engine->Start();
    std::lock_guard<std::mutex> lock(mu_);
    engine_ = engine.get();
  }
  while (!stopped_before_start && !engine->Done()) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.telemetry_interval),
                   [&] { return stop_requested_; });
      if (stop_requested_) engine->Stop();
    }
    v1::AgentMessage message;
    *message.mutable_telemetry() = telemetry.Collect(engine->Snapshot(), false);
    Write(message);
  }
  EngineSnapshot final_snapshot = stopped_before_start ? engine->Snapshot() : engine->Wait();
  v1::AgentMessage last;
  *last.mutable_telemetry() = telemetry.Collect(final_snapshot, true);
  Write(last);
  Log(absl::StrCat("run ", run_id, ": done"));
  std::lock_guard<std::mutex> lock(mu_);
  running_run_.clear();
  engine_ = nullptr;
  ++runs_done_;
  last_run_end_ = absl::Now();
}

void AgentSession::StopShard() {
  std::thread finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_requested_ = true;
    cv_.notify_all();
    finished = std::move(shard_thread_);
  }
  if (finished.joinable()) finished.join();
}

void AgentSession::TickWhile(const std::atomic<bool>& attached) {
  // The first sample goes out at once, so a run started right after attaching includes it.
  while (attached.load() && !shutdown_.load()) {
    if (options_.observer_telemetry) {
      v1::AgentMessage message;
      *message.mutable_telemetry() = options_.observer_telemetry();
      Write(message);
    }
    if (options_.refresh_settings) {
      v1::Hello now = options_.hello;
      options_.refresh_settings(&now);
      bool changed;
      {
        std::lock_guard<std::mutex> lock(mu_);
        changed = !google::protobuf::util::MessageDifferencer::Equals(now, last_hello_);
        if (changed) last_hello_ = now;  // also what the next attachment says
      }
      if (changed) {
        v1::AgentMessage message;
        *message.mutable_hello() = now;
        Write(message);
        Log("settings changed; told the coordinator");
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (options_.exit_when_idle > absl::ZeroDuration() && runs_done_ > 0 && running_run_.empty() &&
        absl::Now() - last_run_end_ >= options_.exit_when_idle) {
      lock.unlock();
      Log(absl::StrCat("idle for ", absl::FormatDuration(options_.exit_when_idle), " after ",
                       runs_done_, " run(s), as --exit-when-idle asked; leaving"));
      Shutdown();
      return;
    }
    cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.telemetry_interval),
                 [&] { return !attached.load() || shutdown_.load(); });
  }
}

void AgentSession::OnAdjust(const v1::Adjust& adjust) {
  double rate = adjust.rate();
  if (options_.max_rate > 0 && rate > options_.max_rate) {
    Log(absl::StrFormat("run %s: asked for %.1f conn/s; --max-rate holds it at %.1f",
                        adjust.run_id(), rate, options_.max_rate));
    rate = options_.max_rate;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (running_run_ != adjust.run_id() || engine_ == nullptr) return;
  engine_->ChangeRate(rate);
  Log(absl::StrFormat("run %s: rate now %.1f conn/s (a lost agent's share)", adjust.run_id(),
                      rate));
}

bool AgentSession::Write(const v1::AgentMessage& message) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  Stream* stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream = stream_;
  }
  return stream != nullptr && stream->Write(message);
}

}  // namespace churnlab
