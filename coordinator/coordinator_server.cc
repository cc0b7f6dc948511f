#include "coordinator/coordinator_server.h"

#include "absl/strings/str_cat.h"
#include "common/address_file.h"
#include "common/status_macros.h"

namespace churnlab {

CoordinatorServer::CoordinatorServer(CoordinatorConfig config) : config_(std::move(config)) {}

CoordinatorServer::~CoordinatorServer() { Stop(); }

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    CoordinatorConfig config) {
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer(std::move(config)));
  ASSIGN_OR_RETURN(server->store_, RunStore::Open(server->config_.db));
  server->coordinator_ = std::make_unique<Coordinator>(
      server->store_.get(), Coordinator::Options{.max_agents = server->config_.max_agents});
  RETURN_IF_ERROR(server->StartGrpc());
  RETURN_IF_ERROR(server->StartHttp());
  RETURN_IF_ERROR(server->WriteAddressFiles());
  CoordinatorServer* self = server.get();
  server->ticker_ = std::thread([self] {
    constexpr absl::Duration kInterval = absl::Milliseconds(100);
    std::unique_lock<std::mutex> lock(self->mu_);
    while (!self->cv_.wait_for(lock, absl::ToChronoNanoseconds(kInterval),
                               [&] { return self->stopping_; })) {
      lock.unlock();
      self->coordinator_->Tick(self->coordinator_->Now());
      lock.lock();
    }
  });
  // The stall watch: a thread that does nothing but wake every 100 ms. Oversleeping past 250 ms
  // is the coordinator not running (CPU contention, SIGSTOP), credited to the agents' silences;
  // less is ordinary scheduling noise. Not the ticker's own lag: a Tick slow with work (a final
  // report, a store write) is no stall, and telemetry keeps arriving meanwhile.
  server->stall_watch_ = std::thread([self] {
    constexpr absl::Duration kInterval = absl::Milliseconds(100);
    constexpr absl::Duration kNoticedStall = absl::Milliseconds(250);
    std::unique_lock<std::mutex> lock(self->mu_);
    absl::Time before = self->coordinator_->Now();
    while (!self->cv_.wait_for(lock, absl::ToChronoNanoseconds(kInterval),
                               [&] { return self->stopping_; })) {
      absl::Time now = self->coordinator_->Now();
      if (absl::Duration overslept = now - before - kInterval; overslept > kNoticedStall) {
        lock.unlock();
        self->coordinator_->CreditStall(overslept);
        lock.lock();
        now = self->coordinator_->Now();  // not the wait for the coordinator's lock
      }
      before = now;
    }
  });
  return server;
}

absl::Status CoordinatorServer::StartGrpc() {
  const std::string& token = config_.security.token;
  gateway_ = std::make_unique<AgentGatewayService>(coordinator_.get(), token);
  control_ = std::make_unique<ControlService>(coordinator_.get(), token);
  ASSIGN_OR_RETURN(grpc_door_, GrpcDoor::Open(config_.grpc_listen, config_.grpc_max_connections));
  grpc::ServerBuilder builder;
  grpc_door_->AttachTo(&builder, CoordinatorCredentials(config_.security));
  ConfigureCoordinatorServer(&builder);
  builder.RegisterService(gateway_.get());
  builder.RegisterService(control_.get());
  grpc_ = builder.BuildAndStart();
  if (grpc_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("gRPC did not start on ", config_.grpc_listen.ToString()));
  }
  config_.grpc_listen = grpc_door_->address();
  grpc_door_->Start();
  return absl::OkStatus();
}

absl::Status CoordinatorServer::StartHttp() {
  HttpApi::Options options = config_.http;
  options.grpc_door_counts = [door = grpc_door_.get()] { return door->counts(); };
  http_ = std::make_unique<HttpApi>(coordinator_.get(), std::move(options));
  if (!config_.http_listen.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(http_bound_, http_->Start(*config_.http_listen, config_.http_plaintext));
  return absl::OkStatus();
}

absl::Status CoordinatorServer::WriteAddressFiles() const {
  std::vector<std::pair<std::string, std::string>> files = {
      {config_.address_file, config_.grpc_listen.ToString()}};
  if (http_bound_) {
    files.emplace_back(config_.http_address_file, http_bound_->address.ToString());
    if (http_bound_->plaintext) {
      files.emplace_back(config_.http_plaintext_address_file, http_bound_->plaintext->ToString());
    }
  }
  for (const auto& [file, address] : files) {
    if (!file.empty()) RETURN_IF_ERROR(WriteAddressFile(file, address));
  }
  return absl::OkStatus();
}

std::string CoordinatorServer::Describe() const {
  const LinkSecurity& security = config_.security;
  std::string http = "off";
  if (http_bound_) {
    http = http_bound_->address.ToString();
    if (http_bound_->plaintext) {
      absl::StrAppend(&http, " (", security.tls_cert.empty() ? "plaintext" : "TLS",
                      "; plaintext on ", http_bound_->plaintext->ToString(), ")");
    } else if (!security.tls_cert.empty()) {
      absl::StrAppend(&http, " (TLS)");
    }
  }
  return absl::StrCat("gRPC on ", config_.grpc_listen.ToString(), " (",
                      security.tls_cert.empty() ? "plaintext"
                      : security.tls_ca.empty() ? "TLS"
                                                : "mutual TLS",
                      ", ", security.token.empty() ? "no token" : "token required", "), HTTP on ",
                      http, ", run store ", config_.db);
}

void CoordinatorServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  if (stall_watch_.joinable()) stall_watch_.join();
  if (http_) http_->Stop();
  if (grpc_door_) grpc_door_->Stop();
  if (grpc_) grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace churnlab
