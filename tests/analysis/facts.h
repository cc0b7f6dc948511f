// Hellos and shard facts for the analysis tests: agents with a 1,000-port range, as in the
// network-namespace lab.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "analysis/run_shape.h"
#include "churnlab/v1/agent.pb.h"
#include "churnlab/v1/spec.pb.h"
#include "tests/support/addresses.h"

namespace churnlab::analysis::testing {

// Owns the hellos and source lists the facts point into.
class Fleet {
 public:
  // An agent with ports 40000-40999 and the given sysctls; returns its hello to adjust.
  v1::Hello& Add(const std::string& name, std::vector<std::string> ips, double rate,
                 std::map<std::string, std::string> sysctls = {{"net.ipv4.tcp_tw_reuse", "0"}},
                 int64_t in_flight = 100) {
    v1::Hello& hello = hellos_.emplace_back();
    hello.set_name(name);
    hello.set_host(name + "-host");
    hello.mutable_port_range()->set_low(40000);
    hello.mutable_port_range()->set_high(40999);
    for (const auto& [key, value] : sysctls) (*hello.mutable_sysctls())[key] = value;
    for (const std::string& ip : ips) hello.add_source_ips(ip);
    const std::vector<SocketAddress>& sources = ips_.emplace_back(churnlab::testing::Ips(ips));
    facts_.push_back(ShardFacts{&hello, sources, rate, in_flight});
    return hello;
  }
  const std::vector<ShardFacts>& facts() const { return facts_; }
  ShardFacts& last() { return facts_.back(); }

 private:
  std::deque<v1::Hello> hellos_;
  std::deque<std::vector<SocketAddress>> ips_;
  std::vector<ShardFacts> facts_;
};

inline v1::RunSpec Spec(std::vector<std::string> targets, double rate,
                        v1::ClosePolicy close = v1::CLOSE_POLICY_CLIENT_FIN,
                        v1::BindMode bind = v1::BIND_MODE_NO_PORT, int64_t duration_s = 30) {
  v1::RunSpec spec;
  for (const std::string& t : targets) spec.add_targets(t);
  spec.set_rate(rate);
  spec.set_close_policy(close);
  spec.set_bind_mode(bind);
  spec.mutable_duration()->set_seconds(duration_s);
  return spec;
}

}  // namespace churnlab::analysis::testing
