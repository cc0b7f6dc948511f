// What the agent reads of its host that the analysis cannot read from a hello's text.
#include "host/host_facts.h"

#include "gtest/gtest.h"

namespace churnlab {
namespace {

// The kernel writes ip_local_reserved_ports as sorted, disjoint spans; only those inside the
// local port range take ports from connect().
TEST(ReservedPortsTest, CountsTheListsPortsInsideTheRange) {
  EXPECT_EQ(ReservedPortsIn("", 40000, 40999), 0u);
  EXPECT_EQ(ReservedPortsIn("8080,40000-40099", 40000, 40999), 100u);
  EXPECT_EQ(ReservedPortsIn("39990-40009,40500,40990-41010", 40000, 40999), 10u + 1 + 10);
  EXPECT_EQ(ReservedPortsIn("1-65535", 32768, 60999), 28232u);
  EXPECT_EQ(ReservedPortsIn("junk,40001", 40000, 40999), 1u);
}

// The hello carries the count, so a long list (many services' ports) fits in any hello.
TEST(ReservedPortsTest, TheHelloCarriesTheCountNotTheList) {
  v1::Hello hello;
  FillHostSettings(&hello);
  EXPECT_EQ(hello.sysctls().count("net.ipv4.ip_local_reserved_ports"), 0u);
  EXPECT_LE(hello.reserved_ports(),
            static_cast<uint32_t>(hello.port_range().high() - hello.port_range().low() + 1));
}

}  // namespace
}  // namespace churnlab
