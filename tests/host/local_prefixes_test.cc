#include "host/local_prefixes.h"

#include "gtest/gtest.h"

namespace churnlab {
namespace {

// A namespace's /proc/net/ipv6_route after `ip -6 route add local fd00:7::/64 dev lo`, with an
// eth0 route and ::1's own local route beside it.
constexpr char kProcIpv6Route[] =
    "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
    "00000000000000000000000000000001 80 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo\n"
    "fd000007000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000400 00000001 00000000 80000001       lo\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
    "not a route\n";

TEST(LocalPrefixesTest, OnlyLocalRoutesShorterThanAnAddress) {
  std::vector<Cidr> prefixes = ParseLocalIpv6Prefixes(kProcIpv6Route);
  ASSERT_EQ(prefixes.size(), 1u);
  EXPECT_EQ(prefixes[0].ToString(), "fd00:7::/64");
}

TEST(LocalPrefixesTest, AnEmptyFileHasNone) { EXPECT_TRUE(ParseLocalIpv6Prefixes("").empty()); }

}  // namespace
}  // namespace churnlab
