#include "coordinator/services.h"

#include <deque>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/source_detail.h"
#include "proto/grpc_link.h"
#include "proto/hello.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

// One attached agent: reads its messages into the Coordinator, writes the Coordinator's messages
// to it one at a time from a queue. Deletes itself when the RPC is done.
class AttachReactor final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>,
      public AgentLink {
 public:
  explicit AttachReactor(Coordinator* coordinator) : coordinator_(coordinator) { StartRead(&in_); }

  void Send(const v1::CoordinatorMessage& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (finishing_) return;
    out_.push_back(message);
    if (!writing_) WriteNext();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return End(grpc::Status::OK);  // the agent closed its side, or the stream broke
    if (name_.empty()) {
      if (!in_.has_hello()) {
        return End(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "send hello first"));
      }
      absl::Status attached = coordinator_->AttachAgent(in_.hello(), this);
      if (!attached.ok()) return End(ToGrpcStatus(attached));
      name_ = in_.hello().name();
    } else if (in_.has_hello()) {
      absl::Status updated = coordinator_->UpdateAgent(name_, in_.hello());
      if (!updated.ok()) return End(ToGrpcStatus(updated));
    } else if (in_.has_telemetry()) {
      coordinator_->OnTelemetry(name_, std::move(*in_.mutable_telemetry()));
    } else if (in_.has_refusal()) {
      coordinator_->OnRefusal(name_, in_.refusal());
    } else if (in_.has_ping()) {
      SendLease(coordinator_->LeaseFor(name_, in_.ping()));
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!out_.empty()) {
      if (out_.front().has_lease()) lease_queued_ = false;
      out_.pop_front();
    }
    if (!ok) {
      out_.clear();
      lease_queued_ = false;
    }
    if (!out_.empty() && !finishing_) return WriteNext();
    if (finishing_ && !finished_) {
      finished_ = true;
      Finish(final_status_);
    }
  }

  // An answer to a Ping, unless one is already waiting to be written: an agent that pings
  // faster than it reads cannot grow this queue (it gets the earlier answer).
  void SendLease(const v1::CoordinatorMessage& lease) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (lease_queued_) return;
      lease_queued_ = true;
    }
    Send(lease);
  }

  void OnDone() override {
    if (!name_.empty()) coordinator_->DetachAgent(name_, this);
    delete this;
  }

 private:
  // Requires mu_.
  void WriteNext() {
    writing_ = true;
    StartWrite(&out_.front());
  }

  // Detaches first, so the Coordinator sends nothing more, then finishes once no write is pending.
  void End(grpc::Status status) {
    if (!name_.empty()) coordinator_->DetachAgent(name_, this);
    std::lock_guard<std::mutex> lock(mu_);
    finishing_ = true;
    final_status_ = std::move(status);
    if (!writing_ && !finished_) {
      finished_ = true;
      Finish(final_status_);
    }
  }

  Coordinator* coordinator_;
  v1::AgentMessage in_;
  std::string name_;
  std::mutex mu_;
  std::deque<v1::CoordinatorMessage> out_;
  bool writing_ = false;
  bool lease_queued_ = false;  // a Lease waits in out_ (or is being written)
  bool finishing_ = false;
  bool finished_ = false;
  grpc::Status final_status_;
};

// Streams a run's updates as the Coordinator produces them, finishing after the final one. A
// run that has ended is read from the store on `calls`, never on the gRPC thread that serves
// agents too.
class WatchReactor final : public grpc::ServerWriteReactor<v1::RunUpdate> {
 public:
  WatchReactor(Coordinator* coordinator, const std::string& run_id, WorkQueue* calls)
      : coordinator_(coordinator) {
    absl::StatusOr<std::optional<int>> id = coordinator_->WatchRunning(
        run_id, [this](const v1::RunReport& report, bool final) { Push(report, final); });
    std::lock_guard<std::mutex> lock(mu_);
    if (!id.ok()) {
      finished_ = true;
      Finish(ToGrpcStatus(id.status()));
    } else if (id->has_value()) {
      watch_id_ = **id;
    } else {
      reading_store_ = true;  // before the call can run: it takes mu_ once this returns
      if (!calls->Submit([this, run_id] { ReadEnded(run_id); })) {
        reading_store_ = false;
        finished_ = true;
        Finish(ToGrpcStatus(
            absl::UnavailableError("the coordinator is busy: too many calls waiting; try again")));
      }
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    queue_.pop_front();
    if (!ok) {
      queue_.clear();
      last_queued_ = true;
    }
    Pump();
  }

  // gRPC may cancel while a write is in flight: the update being written stays in the queue
  // (gRPC reads it until OnWriteDone, which pops it); only the ones waiting behind it go.
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    last_queued_ = true;
    queue_.erase(writing_ ? std::next(queue_.begin()) : queue_.begin(), queue_.end());
    Pump();
  }

  void OnDone() override {
    coordinator_->Unwatch(watch_id_);
    delete this;
  }

 private:
  void Push(const v1::RunReport& report, bool final) {
    std::lock_guard<std::mutex> lock(mu_);
    if (last_queued_) return;
    v1::RunUpdate update;
    // Progress in summary (its size does not grow with the agents' addresses), the final
    // report whole.
    *update.mutable_report() = final ? report : ViewerSummary(report);
    // A slow reader gets the newest progress, not a backlog: keep at most one pending update.
    if (queue_.size() > 1) queue_.pop_back();
    queue_.push_back(std::move(update));
    last_queued_ = final;
    Pump();
  }

  // On `calls`: the ended run's report from the store, as its final update.
  void ReadEnded(const std::string& run_id) {
    absl::StatusOr<v1::RunReport> ended = coordinator_->GetRun(run_id);
    std::lock_guard<std::mutex> lock(mu_);
    reading_store_ = false;
    if (!ended.ok()) {
      finished_ = true;
      Finish(ToGrpcStatus(ended.status()));
      return;
    }
    if (!last_queued_) {  // not cancelled meanwhile
      v1::RunUpdate update;
      *update.mutable_report() = *std::move(ended);
      queue_.push_back(std::move(update));
      last_queued_ = true;
    }
    Pump();
  }

  // Requires mu_.
  void Pump() {
    if (writing_ || finished_ || reading_store_) return;
    if (!queue_.empty()) {
      writing_ = true;
      StartWrite(&queue_.front());
    } else if (last_queued_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  Coordinator* coordinator_;
  int watch_id_ = 0;
  std::mutex mu_;
  std::deque<v1::RunUpdate> queue_;
  bool writing_ = false;
  bool last_queued_ = false;
  bool finished_ = false;
  bool reading_store_ = false;  // ReadEnded is queued or running: it still needs this reactor
};

// A streaming call refused before it starts (no token, or the wrong one).
template <typename Reactor>
class Refused final : public Reactor {
 public:
  explicit Refused(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

absl::Status Authenticate(const grpc::CallbackServerContext* context, const std::string& token) {
  return CheckBearerToken(context->client_metadata(), token);
}

// Authenticates, then runs `fn` on `calls` and finishes with its status there: the run store's
// disk (StartRun, GetRun, ListRuns) never holds up a gRPC thread that serves agents. `fn` must
// capture by value; the request and response it points to live until Finish.
template <typename Fn>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, const std::string& token,
                                WorkQueue* calls, Fn fn) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status authenticated = Authenticate(context, token);
  if (!authenticated.ok()) {
    reactor->Finish(ToGrpcStatus(authenticated));
  } else if (!calls->Submit([reactor, fn] { reactor->Finish(ToGrpcStatus(fn())); })) {
    reactor->Finish(ToGrpcStatus(
        absl::UnavailableError("the coordinator is busy: too many calls waiting; try again")));
  }
  return reactor;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>* AgentGatewayService::Attach(
    grpc::CallbackServerContext* context) {
  if (absl::Status s = Authenticate(context, token_); !s.ok()) {
    return new Refused<grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>>(s);
  }
  return new AttachReactor(coordinator_);
}

grpc::ServerUnaryReactor* ControlService::StartRun(grpc::CallbackServerContext* context,
                                                   const v1::StartRunRequest* request,
                                                   v1::StartRunResponse* response) {
  return Unary(context, token_, &calls_, [this, request, response] {
    absl::StatusOr<v1::StartRunResponse> r = coordinator_->StartRun(request->spec());
    if (r.ok()) *response = *r;
    return r.status();
  });
}

grpc::ServerUnaryReactor* ControlService::GetRun(grpc::CallbackServerContext* context,
                                                 const v1::GetRunRequest* request,
                                                 v1::GetRunResponse* response) {
  return Unary(context, token_, &calls_, [this, request, response] {
    absl::StatusOr<v1::RunReport> r = coordinator_->GetRun(request->run_id());
    if (r.ok()) *response->mutable_report() = *r;
    return r.status();
  });
}

grpc::ServerUnaryReactor* ControlService::ListRuns(grpc::CallbackServerContext* context,
                                                   const v1::ListRunsRequest* request,
                                                   v1::ListRunsResponse* response) {
  return Unary(context, token_, &calls_, [this, request, response] {
    ASSIGN_OR_RETURN(RunQuery query, RunQueryOf(*request));
    ASSIGN_OR_RETURN(RunPage page, coordinator_->ListRuns(query));
    for (v1::RunSummary& run : page.runs) *response->add_runs() = std::move(run);
    response->set_next(page.next);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ControlService::CancelRun(grpc::CallbackServerContext* context,
                                                    const v1::CancelRunRequest* request,
                                                    v1::CancelRunResponse*) {
  return Unary(context, token_, &calls_,
               [this, request] { return coordinator_->CancelRun(request->run_id()); });
}

grpc::ServerWriteReactor<v1::RunUpdate>* ControlService::WatchRun(
    grpc::CallbackServerContext* context, const v1::WatchRunRequest* request) {
  if (absl::Status s = Authenticate(context, token_); !s.ok()) {
    return new Refused<grpc::ServerWriteReactor<v1::RunUpdate>>(s);
  }
  return new WatchReactor(coordinator_, request->run_id(), &calls_);
}

grpc::ServerUnaryReactor* ControlService::ListAgents(grpc::CallbackServerContext* context,
                                                     const v1::ListAgentsRequest* request,
                                                     v1::ListAgentsResponse* response) {
  return Unary(context, token_, &calls_, [this, request, response] {
    if (request->names_size() > kMaxAgentsInFull) {
      return absl::InvalidArgumentError(
          absl::StrCat("names: ", request->names_size(), " agents; at most ", kMaxAgentsInFull));
    }
    std::vector<std::string> names(request->names().begin(), request->names().end());
    for (v1::AgentInfo& agent : coordinator_->ListAgents(names)) {
      *response->add_agents() = std::move(agent);
    }
    return absl::OkStatus();
  });
}

}  // namespace churnlab
