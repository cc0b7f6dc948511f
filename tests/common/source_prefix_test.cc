#include "common/source_prefix.h"

#include "gtest/gtest.h"

namespace churnlab {
namespace {

std::vector<std::string> Expand(const std::string& prefix, int64_t count) {
  absl::StatusOr<std::vector<SocketAddress>> ips = ExpandSourcePrefix(*Cidr::Parse(prefix), count);
  EXPECT_TRUE(ips.ok()) << ips.status();
  std::vector<std::string> out;
  if (ips.ok()) {
    for (const SocketAddress& ip : *ips) out.push_back(ip.IpString());
  }
  return out;
}

TEST(SourcePrefixTest, SkipsThePrefixOwnAddressAndCountsOn) {
  EXPECT_EQ(Expand("2001:db8:7::/64", 4),
            (std::vector<std::string>{"2001:db8:7::1", "2001:db8:7::2", "2001:db8:7::3",
                                      "2001:db8:7::4"}));
  EXPECT_EQ(Expand("10.77.0.0/24", 2), (std::vector<std::string>{"10.77.0.1", "10.77.0.2"}));
  std::vector<std::string> many = Expand("fd00:1::/64", 300);
  ASSERT_EQ(many.size(), 300u);
  EXPECT_EQ(many[254], "fd00:1::ff");
  EXPECT_EQ(many[255], "fd00:1::100");  // the carry into the next byte
}

TEST(SourcePrefixTest, CarriesAcrossBytesToTheEndOfSmallPrefixes) {
  std::vector<std::string> all = Expand("fd00::ff00/120", 255);
  ASSERT_EQ(all.size(), 255u);
  EXPECT_EQ(all.front(), "fd00::ff01");
  EXPECT_EQ(all.back(), "fd00::ffff");
  // IPv4 leaves out the broadcast address as well.
  std::vector<std::string> v4 = Expand("192.0.2.0/24", 254);
  EXPECT_EQ(v4.back(), "192.0.2.254");
}

TEST(SourcePrefixTest, TheSmallestPrefixesGiveEveryAddress) {
  EXPECT_EQ(Expand("2001:db8::5/128", 1), (std::vector<std::string>{"2001:db8::5"}));
  EXPECT_EQ(Expand("2001:db8::4/127", 2), (std::vector<std::string>{"2001:db8::4", "2001:db8::5"}));
  EXPECT_EQ(Expand("10.0.0.2/31", 2), (std::vector<std::string>{"10.0.0.2", "10.0.0.3"}));
  EXPECT_EQ(Expand("10.0.0.9/32", 1), (std::vector<std::string>{"10.0.0.9"}));
}

TEST(SourcePrefixTest, UsableSizes) {
  EXPECT_EQ(UsablePrefixAddresses(*Cidr::Parse("2001:db8::/64")), UINT64_MAX);
  EXPECT_EQ(UsablePrefixAddresses(*Cidr::Parse("2001:db8::/120")), 255u);
  EXPECT_EQ(UsablePrefixAddresses(*Cidr::Parse("10.0.0.0/24")), 254u);
  EXPECT_EQ(UsablePrefixAddresses(*Cidr::Parse("10.0.0.0/30")), 2u);
}

TEST(SourcePrefixTest, CountsOutsideThePrefixOrTheCapAreRefused) {
  Cidr v6 = *Cidr::Parse("2001:db8:7::/64");
  EXPECT_EQ(ExpandSourcePrefix(v6, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpandSourcePrefix(v6, -1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ExpandSourcePrefix(v6, kMaxPrefixSources).ok());
  absl::Status over = ExpandSourcePrefix(v6, kMaxPrefixSources + 1).status();
  EXPECT_EQ(over.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(over.message().find("1..4096"), std::string::npos) << over;
  absl::Status small = ExpandSourcePrefix(*Cidr::Parse("fd00::/126"), 4).status();
  EXPECT_NE(small.message().find("1..3"), std::string::npos) << small;
}

TEST(SourcePrefixTest, HostBitsPastThePrefixAreRefused) {
  absl::Status s = ExpandSourcePrefix(*Cidr::Parse("2001:db8:7::5/64"), 1).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("2001:db8:7::5/64"), std::string::npos) << s;
}

}  // namespace
}  // namespace churnlab
