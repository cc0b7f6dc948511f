#include "host/observer_session.h"

#include "absl/strings/str_cat.h"
#include "host/host_facts.h"

namespace churnlab {

CoordinatorSession::Options ObserverSession::Complete(CoordinatorSession::Options options,
                                                      const std::vector<SocketAddress>& listen) {
  options.hello.set_observer(true);
  for (const SocketAddress& a : listen) options.hello.add_listen_addresses(a.ToString());
  FillHostSettings(&options.hello);
  options.refresh_settings = FillHostSettings;
  return options;
}

ObserverSession::ObserverSession(CoordinatorSession::Options options,
                                 std::vector<SocketAddress> listen,
                                 std::function<v1::ServerCounts()> server_counts)
    : collector_(listen),
      server_counts_(std::move(server_counts)),
      session_(Complete(std::move(options), listen), this) {}

std::optional<v1::ShardTelemetry> ObserverSession::OnTick() {
  std::optional<v1::ShardTelemetry> t = collector_.Collect();
  if (t.has_value() && server_counts_ != nullptr) *t->mutable_server() = server_counts_();
  return t;
}

void ObserverSession::OnAssign(const v1::Shard& shard) {
  const char* reason = "an observer (churnlab-target) runs no load";
  session_.Log(absl::StrCat("refused run ", shard.run_id(), ": ", reason));
  v1::AgentMessage message;
  message.mutable_refusal()->set_run_id(shard.run_id());
  message.mutable_refusal()->set_reason(reason);
  session_.Send(message);
}

}  // namespace churnlab
