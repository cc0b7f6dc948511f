#include "common/net_address.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include "common/local_route.h"
#include "common/target_names.h"
#include "gtest/gtest.h"

namespace churnlab {
namespace {

TEST(SocketAddressTest, ParsesAndPrintsBothFamilies) {
  absl::StatusOr<SocketAddress> v4 = SocketAddress::ParseIpPort("127.0.0.1:9000");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->family(), AF_INET);
  EXPECT_EQ(v4->port(), 9000);
  EXPECT_EQ(v4->ToString(), "127.0.0.1:9000");
  EXPECT_TRUE(v4->is_loopback());
  absl::StatusOr<SocketAddress> v6 = SocketAddress::ParseIpPort("[::1]:80");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->family(), AF_INET6);
  EXPECT_EQ(v6->ToString(), "[::1]:80");
  EXPECT_TRUE(v6->is_loopback());
}

TEST(SocketAddressTest, MalformedAddressesAreNamedInTheError) {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:99999", "localhost:80", "1.2.3:4", "::1:80",
                          "127.0.0.1:", "[::1]80"}) {
    absl::StatusOr<SocketAddress> a = SocketAddress::ParseIpPort(bad);
    ASSERT_FALSE(a.ok()) << bad;
    EXPECT_NE(a.status().message().find(bad), absl::string_view::npos) << a.status();
  }
}

TEST(SocketAddressTest, ListsRejectEmptyItems) {
  EXPECT_EQ(ParseIpPortList("127.0.0.1:1,127.0.0.1:2")->size(), 2u);
  EXPECT_FALSE(ParseIpPortList("127.0.0.1:1,,127.0.0.1:2").ok());
  EXPECT_EQ(ParseIpList("127.0.0.2,127.0.0.3")->size(), 2u);
}

TEST(SocketAddressTest, WildcardsAreUnspecified) {
  EXPECT_TRUE(SocketAddress::ParseIp("0.0.0.0")->is_unspecified());
  EXPECT_TRUE(SocketAddress::ParseIp("::")->is_unspecified());
  EXPECT_FALSE(SocketAddress::ParseIp("127.0.0.1")->is_unspecified());
  EXPECT_FALSE(SocketAddress::ParseIp("::1")->is_unspecified());
}

TEST(CidrTest, ContainsByPrefix) {
  absl::StatusOr<std::vector<Cidr>> loopback = ParseCidrList(kLoopbackCidrs);
  ASSERT_TRUE(loopback.ok());
  EXPECT_TRUE(CheckTargetsAllowed({*SocketAddress::ParseIpPort("127.9.8.7:1")}, *loopback).ok());
  EXPECT_TRUE(CheckTargetsAllowed({*SocketAddress::ParseIpPort("[::1]:1")}, *loopback).ok());
  absl::Status refused =
      CheckTargetsAllowed({*SocketAddress::ParseIpPort("192.0.2.1:80")}, *loopback);
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(refused.message().find("192.0.2.1:80"), absl::string_view::npos);
  absl::StatusOr<Cidr> odd = Cidr::Parse("10.1.2.0/23");
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->Contains(*SocketAddress::ParseIp("10.1.3.255")));
  EXPECT_FALSE(odd->Contains(*SocketAddress::ParseIp("10.1.4.0")));
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/33").ok());
}

TEST(SocketAddressTest, Ipv4MappedAddressesAreTheirIpv4Address) {
  absl::StatusOr<SocketAddress> mapped = SocketAddress::ParseIpPort("[::ffff:192.0.2.1]:80");
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  EXPECT_EQ(mapped->family(), AF_INET);
  EXPECT_EQ(mapped->ToString(), "192.0.2.1:80");
  EXPECT_EQ(SocketAddress::ParseIp("::ffff:7f00:1")->ToString(), "127.0.0.1:0");
  // IPv4-compatible (::a.b.c.d, deprecated) and other IPv6 addresses stay IPv6.
  EXPECT_EQ(SocketAddress::ParseIp("::1.2.3.4")->family(), AF_INET6);
  EXPECT_EQ(SocketAddress::ParseIp("::1")->family(), AF_INET6);
}

TEST(CidrTest, AnAllIpv6ListDoesNotAdmitMappedIpv4Targets) {
  absl::StatusOr<std::vector<Cidr>> v6_only = ParseCidrList("::/0");
  ASSERT_TRUE(v6_only.ok());
  absl::Status refused =
      CheckTargetsAllowed({*SocketAddress::ParseIpPort("[::ffff:192.0.2.1]:80")}, *v6_only);
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_NE(refused.message().find("192.0.2.1:80"), absl::string_view::npos) << refused;
  // The IPv4 list admits them; a kernel-filled mapped address (not parsed) is matched the same.
  absl::StatusOr<Cidr> v4 = Cidr::Parse("192.0.2.0/24");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->Contains(*SocketAddress::ParseIp("::ffff:192.0.2.9")));
  sockaddr_in6 raw{};
  raw.sin6_family = AF_INET6;
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:192.0.2.9", &raw.sin6_addr), 1);
  absl::StatusOr<SocketAddress> from_kernel =
      SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&raw), sizeof(raw));
  ASSERT_TRUE(from_kernel.ok());
  EXPECT_TRUE(from_kernel->is_v4_mapped());
  EXPECT_TRUE(v4->Contains(*from_kernel));
  EXPECT_FALSE(Cidr::Parse("::/0")->Contains(*from_kernel));
}

TEST(CidrTest, MappedBlocksAreTheIpv4BlockTheyMap) {
  absl::StatusOr<Cidr> mapped = Cidr::Parse("::ffff:10.0.0.0/104");
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  EXPECT_EQ(mapped->ToString(), "10.0.0.0/8");
  EXPECT_TRUE(mapped->Contains(*SocketAddress::ParseIp("10.9.9.9")));
  EXPECT_FALSE(mapped->Contains(*SocketAddress::ParseIp("11.0.0.1")));
  EXPECT_EQ(Cidr::Parse("::ffff:10.0.0.1")->ToString(), "10.0.0.1/32");
  absl::StatusOr<Cidr> too_wide = Cidr::Parse("::ffff:0.0.0.0/80");
  ASSERT_FALSE(too_wide.ok());
  EXPECT_NE(too_wide.status().message().find("96..128"), absl::string_view::npos);
}

TEST(CheckAddressIsLocalTest, LoopbackAliasesAreLocalOthersAreNot) {
  EXPECT_TRUE(CheckAddressIsLocal(*SocketAddress::ParseIp("127.0.0.5")).ok());
  absl::Status s = CheckAddressIsLocal(*SocketAddress::ParseIp("192.0.2.9"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("192.0.2.9"), absl::string_view::npos);
}

TEST(CheckLocalBindingTest, AssignedAddressesBindAsTheyAre) {
  EXPECT_EQ(*CheckLocalBinding(*SocketAddress::ParseIp("127.0.0.5")), LocalBinding::kAssigned);
  // An IPv6 address on no interface and in no local route stays refused, even though
  // IPV6_FREEBIND would let a socket bind to it.
  absl::StatusOr<LocalBinding> stranger = CheckLocalBinding(*SocketAddress::ParseIp("2001:db8::9"));
  ASSERT_FALSE(stranger.ok());
  EXPECT_EQ(stranger.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(stranger.status().message().find("2001:db8::9"), absl::string_view::npos);
}

TEST(IsRoutedLocalTest, TheKernelsLocalTableDecides) {
  // 127.0.0.0/8 is one `local` route in every namespace's local table; ::1 is assigned to lo.
  EXPECT_TRUE(*IsRoutedLocal(*SocketAddress::ParseIp("127.0.0.77")));
  absl::StatusOr<bool> v6 = IsRoutedLocal(*SocketAddress::ParseIp("::1"));
  if (v6.ok()) {
    EXPECT_TRUE(*v6);  // a host without IPv6 has no ::1 to ask about
  }
  absl::StatusOr<bool> doc = IsRoutedLocal(*SocketAddress::ParseIp("192.0.2.9"));
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_FALSE(*doc);
}

TEST(NamedTargetTest, ParsesDnsNamesAndRefusesWhatIsNone) {
  absl::StatusOr<NamedTarget> t = ParseNamedTarget("api.example.com:443");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->host, "api.example.com");
  EXPECT_EQ(t->port, 443);
  EXPECT_TRUE(ParseNamedTarget("localhost:9000").ok());
  EXPECT_TRUE(ParseNamedTarget("svc_name.ns.svc.cluster.local.:80").ok());
  for (const char* bad :
       {"api.example.com", "api.example.com:0", "api.example.com:70000", "-a.example:1",
        "a..example:1", "a b:1", "10.0.0.300:80", ":80", "\x1b[31m:80"}) {
    absl::StatusOr<NamedTarget> r = ParseNamedTarget(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) EXPECT_NE(r.status().message().find("host:port"), std::string::npos) << bad;
  }
  EXPECT_FALSE(ParseNamedTarget(std::string(250, 'a') + ".example:1").ok());  // over 63 a label
}

TEST(NamedTargetTest, TheRunsFamilyComesFromIpTargetsThenSourcesThenTheName) {
  std::vector<SocketAddress> v4 = {*SocketAddress::ParseIpPort("127.0.0.1:1")};
  std::vector<SocketAddress> v6 = {*SocketAddress::ParseIpPort("[::1]:1")};
  EXPECT_EQ(RunFamily(v6, v4, 1), AF_INET6);  // IP targets decide
  EXPECT_EQ(RunFamily({}, v6, 3), AF_INET6);  // a dual-stack name from IPv6 sources
  EXPECT_EQ(RunFamily({}, v4, 3), AF_INET);
  EXPECT_EQ(RunFamily({}, {}, 3), AF_INET);   // dual stack, no sources: IPv4
  EXPECT_EQ(RunFamily({}, {}, 2), AF_INET6);  // an IPv6-only name
  EXPECT_EQ(RunFamily({}, v4, 2), AF_INET6);  // the name wins over sources it cannot reach
}

TEST(NamedTargetTest, LocalhostResolvesHereToLoopback) {
  absl::StatusOr<std::vector<Resolution>> r =
      ResolveTargets({NamedTarget{"localhost", 9000}}, {}, {});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  ASSERT_FALSE((*r)[0].addresses.empty());
  for (const SocketAddress& a : (*r)[0].addresses) {
    EXPECT_TRUE(a.is_loopback()) << a.ToString();
    EXPECT_EQ(a.port(), 9000);
  }
  absl::StatusOr<std::vector<Resolution>> none =
      ResolveTargets({NamedTarget{"no-such-host.invalid", 1}}, {}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no-such-host.invalid"), std::string::npos);
}

// An allow-list takes address blocks and host names; a name allows what it resolves to where
// the check runs, nothing else (DNS widens no block), and a name that does not resolve allows
// nothing and says why.
TEST(AllowListTest, BlocksAndHostNames) {
  absl::StatusOr<AllowList> list = ParseAllowList("10.0.0.0/8,::1,localhost");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->blocks.size(), 2u);
  EXPECT_EQ(list->Entries(), (std::vector<std::string>{"10.0.0.0/8", "::1/128", "localhost"}));
  for (const char* bad : {"10.0.0.0/99", "not a name", "999.1.1.1", ""}) {
    absl::StatusOr<AllowList> refused = ParseAllowList(bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.status().message().find(bad), std::string::npos) << refused.status();
  }

  absl::StatusOr<AllowList> by_name = ParseAllowList("localhost");
  ASSERT_TRUE(by_name.ok());
  auto target = [](const char* text) { return *SocketAddress::ParseIpPort(text); };
  EXPECT_TRUE(CheckTargetsAllowed({target("127.0.0.1:80")}, *by_name).ok());
  absl::Status outside = CheckTargetsAllowed({target("127.0.0.2:80")}, *by_name);
  EXPECT_EQ(outside.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(outside.message().find("target 127.0.0.2:80 is outside the allowed targets localhost "
                                   "(localhost: 127.0.0.1"),
            std::string::npos)
      << outside;
  absl::Status unknown =
      CheckTargetsAllowed({target("127.0.0.1:80")}, *ParseAllowList("no-such-host.invalid"));
  EXPECT_EQ(unknown.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(unknown.message().find("no-such-host.invalid: cannot resolve it"), std::string::npos)
      << unknown;
  // Blocks beside a name still allow on their own.
  EXPECT_TRUE(CheckTargetsAllowed({target("10.1.2.3:80")},
                                  *ParseAllowList("no-such-host.invalid,10.0.0.0/8"))
                  .ok());
}

}  // namespace
}  // namespace churnlab
