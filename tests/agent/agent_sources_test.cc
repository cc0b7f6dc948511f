#include "agent/agent_sources.h"

#include "gtest/gtest.h"

namespace churnlab {
namespace {

SourceFlags Prefix(const std::string& prefix, int64_t count) {
  SourceFlags f;
  f.source_prefix = prefix;
  f.source_count = count;
  return f;
}

SourceFlags Within(const std::string& block, int64_t count) {
  SourceFlags f;
  f.source_prefix_within = block;
  f.source_count = count;
  return f;
}

SourceFlags Ips(const std::string& ips) {
  SourceFlags f;
  f.source_ips = ips;
  return f;
}

TEST(AgentSourcesTest, APrefixRoutedLocalGivesItsFirstAddresses) {
  // 127.0.0.0/8 is routed `local` on every Linux host: the IPv4 AnyIP case, with no root needed.
  absl::StatusOr<std::vector<SocketAddress>> ips = ResolveSources(Prefix("127.0.3.0/24", 4));
  ASSERT_TRUE(ips.ok()) << ips.status();
  ASSERT_EQ(ips->size(), 4u);
  EXPECT_EQ((*ips)[0].IpString(), "127.0.3.1");
  EXPECT_EQ((*ips)[3].IpString(), "127.0.3.4");
}

TEST(AgentSourcesTest, APrefixNotRoutedHereIsRefusedNamingTheFlagAndTheFix) {
  absl::Status s = ResolveSources(Prefix("2001:db8:7::/64", 4)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("--source-prefix=2001:db8:7::/64"), std::string::npos) << s;
  EXPECT_NE(s.message().find("ip -6 route add local 2001:db8:7::/64 dev lo"), std::string::npos)
      << s;
}

TEST(AgentSourcesTest, ABlockWithoutALocalPrefixInsideIsRefusedNamingTheFlag) {
  absl::Status s = ResolveSources(Within("2001:db8:7::/48", 4)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("--source-prefix-within=2001:db8:7::/48"), std::string::npos) << s;
  EXPECT_NE(s.message().find("no prefix"), std::string::npos) << s;
}

TEST(AgentSourcesTest, MalformedOrConflictingFlagsAreInvalidArguments) {
  auto code = [](const SourceFlags& f) { return ResolveSources(f).status().code(); };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(Prefix("127.0.3.0/24", 0)), kInvalid);  // no count
  EXPECT_EQ(code(Prefix("127.0.3.0/24", 255)), kInvalid);
  EXPECT_EQ(code(Prefix("127.0.3.0/33", 1)), kInvalid);
  EXPECT_EQ(code(Prefix("127.0.3.9/24", 1)), kInvalid);
  EXPECT_EQ(code(Prefix("", 4)), kInvalid);
  EXPECT_EQ(code([] {
              SourceFlags f = Prefix("fd00::/64", 1);
              f.source_prefix_within = "fd00::/16";
              return f;
            }()),
            kInvalid);
  EXPECT_EQ(code([] {
              SourceFlags f = Prefix("127.0.3.0/24", 1);
              f.source_ips = "127.0.0.1";
              return f;
            }()),
            kInvalid);
  absl::Status s = ResolveSources(Prefix("fd00::/64", 5000)).status();
  EXPECT_NE(s.message().find("--source-count=5000"), std::string::npos) << s;
}

TEST(AgentSourcesTest, SourceIpsStillNeedToBeThisHosts) {
  EXPECT_TRUE(ResolveSources(Ips("127.0.0.2,127.0.0.3")).ok());
  absl::Status s = ResolveSources(Ips("192.0.2.9")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--source-ips"), std::string::npos) << s;
}

// Listed twice, an IP counted twice in every budget (three times: a tripled budget); a
// wildcard, multicast or broadcast address is no connection's source.
TEST(AgentSourcesTest, SourceIpsAreEachListedOnceAndUnicast) {
  absl::Status twice = ResolveSources(Ips("127.0.0.2,127.0.0.3,127.0.0.2")).status();
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(twice.message().find("127.0.0.2 is listed twice"), std::string::npos) << twice;
  for (const char* ip : {"0.0.0.0", "224.0.0.1", "239.1.2.3", "255.255.255.255", "::", "ff02::1"}) {
    absl::Status s = ResolveSources(Ips(ip)).status();
    EXPECT_NE(s.message().find("no unicast address"), std::string::npos) << ip << ": " << s;
  }
}

}  // namespace
}  // namespace churnlab
