#include "proto/engine_codec.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/bit_bytes.h"
#include "common/status_macros.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

template <typename T>
absl::StatusOr<T> Choice(absl::string_view field, absl::StatusOr<T> value) {
  if (!value.ok()) return Invalid(field, value.status().message());
  return value;
}

// A port set as bytes (common/bit_bytes.h), up to its highest port.
std::string PortBits(const PortSet& ports) {
  std::string bits;
  for (size_t port = 0; port < ports.size(); ++port) {
    if (ports.test(port)) SetBit(&bits, port);
  }
  return bits;
}

// PortBits' bytes (at most 8,192) as a set; null when there are none.
std::shared_ptr<const PortSet> PortSetOf(const std::string& bits) {
  if (bits.empty()) return nullptr;
  auto ports = std::make_shared<PortSet>();
  for (size_t port = 0; port < bits.size() * 8; ++port) {
    if (BitAt(bits, port)) ports->set(port);
  }
  return ports;
}

}  // namespace

v1::EngineParams EngineParamsToProto(const EngineParams& p) {
  v1::EngineParams m;
  for (const SocketAddress& t : p.targets) m.add_targets(t.ToString());
  for (const std::string& name : p.target_names) m.add_target_names(name);
  for (const SocketAddress& s : p.source_ips) m.add_source_ips(s.IpString());
  m.set_bind_mode(ToProto(p.bind_mode));
  m.set_protocol(ToProto(p.protocol));
  m.set_close_policy(ToProto(p.close_policy));
  m.set_rate(p.rate);
  m.set_concurrency(p.concurrency);
  *m.mutable_duration() = ToProto(p.duration);
  *m.mutable_ramp_up() = ToProto(p.ramp_up);
  for (const RateStage& stage : p.stages) {
    v1::Stage* s = m.add_stages();
    *s->mutable_duration() = ToProto(stage.duration);
    s->set_rate(stage.rate);
  }
  m.set_requests_per_connection(p.requests_per_connection);
  v1::HttpRequest* request = m.mutable_request();
  request->set_method(p.request.method);
  request->set_path(p.request.path);
  for (const std::string& h : p.request.headers) request->add_headers(h);
  request->set_body(p.request.body);
  request->set_expect_status(p.expect_status);
  m.mutable_tls()->set_target_ca_pem(p.tls.ca_pem);
  m.mutable_tls()->set_insecure(p.tls.insecure);
  m.mutable_tls()->set_resumption(p.tls.resumption);
  *m.mutable_hold() = ToProto(p.hold);
  *m.mutable_connect_timeout() = ToProto(p.connect_timeout);
  *m.mutable_io_timeout() = ToProto(p.io_timeout);
  m.set_max_in_flight(p.max_in_flight);
  m.set_max_connections(p.max_connections);
  m.set_threads(p.threads);
  m.set_max_rate(p.max_rate);
  m.set_leased(p.leased);
  if (p.bind_mode == BindMode::kEngine) {
    v1::EnginePorts* ports = m.mutable_ports();
    ports->set_low(p.ports.low);
    ports->set_high(p.ports.high);
    *ports->mutable_reuse_after() = ToProto(p.ports.reuse_after);
    if (p.ports.excluded != nullptr) ports->set_excluded(PortBits(*p.ports.excluded));
    if (p.ports.time_wait != nullptr) ports->set_time_wait(PortBits(*p.ports.time_wait));
    *ports->mutable_time_wait_left() = ToProto(p.ports.time_wait_left);
  }
  return m;
}

absl::StatusOr<EngineParams> EngineParamsFromProto(const v1::EngineParams& m) {
  EngineParams p;
  for (const std::string& t : m.targets()) {
    absl::StatusOr<SocketAddress> target = SocketAddress::ParseIpPort(t);
    if (!target.ok()) return Invalid("targets", target.status().message());
    p.targets.push_back(*target);
  }
  p.target_names.assign(m.target_names().begin(), m.target_names().end());
  for (const std::string& ip : m.source_ips()) {
    absl::StatusOr<SocketAddress> source = SocketAddress::ParseIp(ip);
    if (!source.ok()) return Invalid("source_ips", source.status().message());
    p.source_ips.push_back(*source);
  }
  ASSIGN_OR_RETURN(p.bind_mode, Choice("bind_mode", ToEngine(m.bind_mode())));
  ASSIGN_OR_RETURN(p.protocol, Choice("protocol", ToEngine(m.protocol())));
  ASSIGN_OR_RETURN(p.close_policy, Choice("close_policy", ToEngine(m.close_policy())));
  p.rate = m.rate();
  p.concurrency = m.concurrency();
  p.duration = ToAbsl(m.duration());
  p.ramp_up = ToAbsl(m.ramp_up());
  for (const v1::Stage& s : m.stages()) p.stages.push_back({ToAbsl(s.duration()), s.rate()});
  p.requests_per_connection = m.requests_per_connection();
  p.request.method = m.request().method();
  p.request.path = m.request().path();
  p.request.headers.assign(m.request().headers().begin(), m.request().headers().end());
  p.request.body = m.request().body();
  p.expect_status = m.request().expect_status();
  p.tls.ca_pem = m.tls().target_ca_pem();
  p.tls.insecure = m.tls().insecure();
  p.tls.resumption = m.tls().resumption();
  p.hold = ToAbsl(m.hold());
  p.connect_timeout = ToAbsl(m.connect_timeout());
  p.io_timeout = ToAbsl(m.io_timeout());
  p.max_in_flight = m.max_in_flight();
  p.max_connections = m.max_connections();
  p.threads = m.threads();
  p.max_rate = m.max_rate();
  p.leased = m.leased();
  if (m.has_ports()) {
    const v1::EnginePorts& ports = m.ports();
    if (ports.low() > 65535 || ports.high() > 65535 || ports.excluded().size() > 65536 / 8 ||
        ports.time_wait().size() > 65536 / 8) {
      return Invalid("ports", absl::StrCat(ports.low(), "-", ports.high(), " with ",
                                           ports.excluded().size(), " bytes of exclusions and ",
                                           ports.time_wait().size(), " of TIME_WAIT"));
    }
    p.ports.low = static_cast<uint16_t>(ports.low());
    p.ports.high = static_cast<uint16_t>(ports.high());
    p.ports.reuse_after = ToAbsl(ports.reuse_after());
    p.ports.excluded = PortSetOf(ports.excluded());
    p.ports.time_wait = PortSetOf(ports.time_wait());
    p.ports.time_wait_left = ToAbsl(ports.time_wait_left());
  }
  RETURN_IF_ERROR(ValidateEngineParams(p));
  return p;
}

}  // namespace churnlab
