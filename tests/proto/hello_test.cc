#include "proto/hello.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace churnlab {
namespace {

v1::Hello RealHello() {
  v1::Hello hello;
  hello.set_name("agent-1");
  hello.set_host("node-a");
  hello.set_version("0.1.0");
  hello.add_source_ips("127.0.0.2");
  hello.add_source_ips("::1");
  hello.add_allow_targets("127.0.0.0/8");
  hello.add_listen_addresses("[::]:9000");
  hello.mutable_port_range()->set_low(32768);
  hello.mutable_port_range()->set_high(60999);
  (*hello.mutable_sysctls())["net.ipv4.tcp_tw_reuse"] = "2";
  hello.set_kernel_id("0f6c2c3e-7d1a-4c11-9d8e-0a1b2c3d4e5f/net:[4026531840]");
  return hello;
}

// The error is INVALID_ARGUMENT and starts with the field's name.
void ExpectRefused(const v1::Hello& hello, const std::string& field, const std::string& limit) {
  absl::Status status = ValidateHello(hello);
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StartsWith(status.message(), "hello." + field + ":")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), limit)) << status;
}

TEST(HelloTest, ARealAgentsHelloPasses) { EXPECT_TRUE(ValidateHello(RealHello()).ok()); }

TEST(HelloTest, StringsAreBounded) {
  v1::Hello hello = RealHello();
  hello.set_name("");
  ExpectRefused(hello, "name", "empty");
  hello.set_name(std::string(129, 'n'));
  ExpectRefused(hello, "name", "at most 128");
  hello.set_name("evil\x1b[2J");
  ExpectRefused(hello, "name", "control characters");
  hello = RealHello();
  hello.set_host(std::string(3'900'000, 'h'));
  ExpectRefused(hello, "host", "at most 255");
  hello = RealHello();
  hello.set_version(std::string(65, 'v'));
  ExpectRefused(hello, "version", "at most 64");
  hello = RealHello();
  hello.set_kernel_id(std::string(129, 'k'));
  ExpectRefused(hello, "kernel_id", "at most 128");
}

TEST(HelloTest, ListsAreBoundedAndTheirItemsParse) {
  v1::Hello hello = RealHello();
  for (int i = 0; i < 4095; ++i) hello.add_source_ips("127.0.0.3");
  ExpectRefused(hello, "source_ips", "at most 4096");
  hello = RealHello();
  hello.add_source_ips("not-an-ip");
  ExpectRefused(hello, "source_ips", "not-an-ip");
  hello = RealHello();
  for (int i = 0; i < 256; ++i) hello.add_allow_targets("10.0.0.0/8");
  ExpectRefused(hello, "allow_targets", "at most 256");
  hello = RealHello();
  hello.add_allow_targets("10.0.0.0/99");
  ExpectRefused(hello, "allow_targets", "prefix");
  hello = RealHello();
  for (int i = 0; i < 256; ++i) hello.add_listen_addresses("127.0.0.1:9000");
  ExpectRefused(hello, "listen_addresses", "at most 256");
  hello = RealHello();
  hello.add_listen_addresses(std::string(1000, '1'));
  ExpectRefused(hello, "listen_addresses", "at most 64");
}

// The agent's own caps, which the scheduler compares shares with: finite and in range.
TEST(HelloTest, TheAgentsCapsAreFiniteAndInRange) {
  v1::Hello hello = RealHello();
  hello.set_max_rate(10);
  hello.set_max_in_flight(5);
  EXPECT_TRUE(ValidateHello(hello).ok());
  for (double bad : {std::nan(""), -1.0, 5e6 + 1, std::numeric_limits<double>::infinity()}) {
    hello.set_max_rate(bad);
    ExpectRefused(hello, "max_rate", "is not in 0..");
  }
  hello.set_max_rate(0);
  hello.set_max_in_flight(-1);
  ExpectRefused(hello, "max_in_flight", "is not in 0..");
}

TEST(HelloTest, SysctlsAndPortRangeAreBounded) {
  v1::Hello hello = RealHello();
  for (int i = 0; i < 64; ++i) (*hello.mutable_sysctls())[absl::StrCat("k", i)] = "v";
  ExpectRefused(hello, "sysctls", "at most 64");
  hello = RealHello();
  (*hello.mutable_sysctls())["net.ipv4.x"] = std::string(257, 'v');
  ExpectRefused(hello, "sysctls", "values at most 256");
  hello = RealHello();
  hello.mutable_port_range()->set_low(70000);
  hello.mutable_port_range()->set_high(80000);
  ExpectRefused(hello, "port_range", "0-65535");
  hello.mutable_port_range()->set_low(5000);
  hello.mutable_port_range()->set_high(4000);
  ExpectRefused(hello, "port_range", "0-65535");
}

// The idle census: counts a census can give, or the hello is refused.
TEST(HelloTest, TheIdleCensusIsBounded) {
  v1::Hello hello = RealHello();
  hello.mutable_range_held()->set_in_use(990);
  hello.mutable_range_held()->set_listening(2);
  hello.mutable_range_held()->set_time_wait(2400);
  EXPECT_TRUE(ValidateHello(hello).ok());
  hello.mutable_range_held()->set_in_use(70000);
  ExpectRefused(hello, "range_held", "70000 ports in use");
  hello.mutable_range_held()->set_in_use(1);
  ExpectRefused(hello, "range_held", "2 listening");  // more listeners than ports held
  hello.mutable_range_held()->set_listening(0);
  hello.mutable_range_held()->set_time_wait(uint64_t{1} << 60);
  ExpectRefused(hello, "range_held", "in TIME_WAIT");
}

}  // namespace
}  // namespace churnlab
