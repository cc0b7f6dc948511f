// The HTTP access rules: tokens per route kind, --public-read, the metrics token, and the
// Origin/Host check of write routes; plus the static file resolver's refusals.
#include "http/http_access.h"

#include <gtest/gtest.h>

namespace churnlab {
namespace {

SocketAddress Local(const char* text) { return *SocketAddress::ParseIpPort(text); }

HttpRequestFacts Facts(const char* local = "127.0.0.1:7401") {
  HttpRequestFacts f;
  f.local = Local(local);
  f.host = f.local.ToString();
  return f;
}

TEST(HttpAccessTest, WithoutATokenEverythingIsOpenButCrossSiteWrites) {
  HttpAccessRules rules;
  HttpRequestFacts f = Facts();
  for (HttpRouteKind kind : {HttpRouteKind::kPage, HttpRouteKind::kRead, HttpRouteKind::kEvents,
                             HttpRouteKind::kMetrics, HttpRouteKind::kWrite}) {
    EXPECT_TRUE(CheckHttpAccess(rules, kind, f).ok());
  }
  f.has_origin = true;
  f.origin = "http://evil.example";
  EXPECT_EQ(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).code(),
            absl::StatusCode::kPermissionDenied);
  f.origin = "http://127.0.0.1:7401";
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).ok());
  f.origin = "null";
  EXPECT_FALSE(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).ok());
}

TEST(HttpAccessTest, ATokenGuardsReadsEventsMetricsAndWritesNotThePage) {
  HttpAccessRules rules;
  rules.token = "s3cret";
  HttpRequestFacts f = Facts();
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kPage, f).ok());
  for (HttpRouteKind kind : {HttpRouteKind::kRead, HttpRouteKind::kEvents, HttpRouteKind::kMetrics,
                             HttpRouteKind::kWrite}) {
    EXPECT_EQ(CheckHttpAccess(rules, kind, f).code(), absl::StatusCode::kUnauthenticated);
  }
  f.authorization = "Bearer s3cret";
  for (HttpRouteKind kind : {HttpRouteKind::kRead, HttpRouteKind::kEvents, HttpRouteKind::kMetrics,
                             HttpRouteKind::kWrite}) {
    EXPECT_TRUE(CheckHttpAccess(rules, kind, f).ok());
  }
  f.authorization = "Bearer s3cre";
  EXPECT_FALSE(CheckHttpAccess(rules, HttpRouteKind::kRead, f).ok());
}

TEST(HttpAccessTest, TheQueryTokenOpensOnlyTheEventStream) {
  HttpAccessRules rules;
  rules.token = "s3cret";
  HttpRequestFacts f = Facts();
  f.query_token = "s3cret";
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kEvents, f).ok());
  EXPECT_FALSE(CheckHttpAccess(rules, HttpRouteKind::kRead, f).ok());
  EXPECT_FALSE(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).ok());
  f.query_token = "wrong";
  EXPECT_FALSE(CheckHttpAccess(rules, HttpRouteKind::kEvents, f).ok());
}

TEST(HttpAccessTest, PublicReadOpensReadsNotWrites) {
  HttpAccessRules rules;
  rules.token = "s3cret";
  rules.public_read = true;
  HttpRequestFacts f = Facts();
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kRead, f).ok());
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kEvents, f).ok());
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kMetrics, f).ok());
  EXPECT_EQ(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(HttpAccessTest, TheMetricsTokenOpensMetricsOnly) {
  HttpAccessRules rules;
  rules.token = "s3cret";
  rules.metrics_token = "scrape";
  HttpRequestFacts f = Facts();
  f.authorization = "Bearer scrape";
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kMetrics, f).ok());
  EXPECT_FALSE(CheckHttpAccess(rules, HttpRouteKind::kRead, f).ok());
  EXPECT_FALSE(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).ok());
  f.authorization = "Bearer s3cret";
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kMetrics, f).ok());
  // A metrics token without a coordinator token still closes /metrics.
  HttpAccessRules only_metrics;
  only_metrics.metrics_token = "scrape";
  f.authorization = "";
  EXPECT_FALSE(CheckHttpAccess(only_metrics, HttpRouteKind::kMetrics, f).ok());
  EXPECT_TRUE(CheckHttpAccess(only_metrics, HttpRouteKind::kRead, f).ok());
}

TEST(HttpAccessTest, CrossSiteWritesAreRefusedBeforeTheTokenIsLookedAt) {
  HttpAccessRules rules;
  rules.token = "s3cret";
  HttpRequestFacts f = Facts();
  f.authorization = "Bearer s3cret";
  f.has_origin = true;
  f.origin = "http://evil.example";
  EXPECT_EQ(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).code(),
            absl::StatusCode::kPermissionDenied);
  f.authorization = "";
  EXPECT_EQ(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).code(),
            absl::StatusCode::kPermissionDenied);
}

// Over TLS the page's origin is https://: a same-origin POST names it, an http:// one is from
// another origin (a plaintext page of the same host).
TEST(HttpAccessTest, TheOriginCheckKnowsTls) {
  HttpAccessRules rules;
  HttpRequestFacts f = Facts();
  f.tls = true;
  f.has_origin = true;
  f.origin = "https://127.0.0.1:7401";
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).ok());
  f.origin = "http://127.0.0.1:7401";
  EXPECT_EQ(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).code(),
            absl::StatusCode::kPermissionDenied);
  f.tls = false;
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).ok());
  f.origin = "https://127.0.0.1:7401";
  EXPECT_FALSE(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).ok());
}

TEST(HttpAccessTest, DnsRebindingIsCaughtByTheHostHeader) {
  HttpAccessRules rules;
  HttpRequestFacts f = Facts();
  f.host = "evil.example:7401";  // a name that resolved to 127.0.0.1
  f.has_origin = true;
  f.origin = "http://evil.example:7401";  // same-origin as far as the browser knows
  EXPECT_EQ(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).code(),
            absl::StatusCode::kPermissionDenied);
  rules.allowed_hosts = {"evil.example"};
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).ok());
  f.host = "";
  f.has_origin = false;
  EXPECT_FALSE(CheckHttpAccess(rules, HttpRouteKind::kWrite, f).ok());
}

// Without a token a rebinding page reads nothing either: reads, events and /metrics answer
// only the server's own names (its address, localhost on loopback, --http-allowed-hosts). With
// a token the token guards them; the page itself holds no data.
TEST(HttpAccessTest, DnsRebindingReadsNothingFromATokenlessCoordinator) {
  HttpAccessRules rules;
  HttpRequestFacts f = Facts();
  f.host = "evil.example:7401";
  for (HttpRouteKind kind :
       {HttpRouteKind::kRead, HttpRouteKind::kEvents, HttpRouteKind::kMetrics}) {
    EXPECT_EQ(CheckHttpAccess(rules, kind, f).code(), absl::StatusCode::kPermissionDenied);
  }
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kPage, f).ok());
  f.host = "localhost:7401";
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kRead, f).ok());
  f.host = "";
  EXPECT_FALSE(CheckHttpAccess(rules, HttpRouteKind::kRead, f).ok());
  // The metrics token guards /metrics; reads stay held to the Host.
  rules.metrics_token = "m";
  f.host = "evil.example:7401";
  f.authorization = "Bearer m";
  EXPECT_TRUE(CheckHttpAccess(rules, HttpRouteKind::kMetrics, f).ok());
  EXPECT_FALSE(CheckHttpAccess(rules, HttpRouteKind::kRead, f).ok());
}

TEST(HttpAccessTest, HostNamesServer) {
  const std::vector<std::string> none;
  EXPECT_TRUE(HostNamesServer("127.0.0.1:7401", Local("127.0.0.1:7401"), false, none));
  EXPECT_TRUE(HostNamesServer("LOCALHOST:7401", Local("127.0.0.1:7401"), false, none));
  EXPECT_FALSE(HostNamesServer("localhost:7401", Local("10.0.0.1:7401"), false, none));
  EXPECT_FALSE(HostNamesServer("127.0.0.1:7402", Local("127.0.0.1:7401"), false, none));
  EXPECT_FALSE(HostNamesServer("127.0.0.1", Local("127.0.0.1:7401"), false, none));
  EXPECT_TRUE(HostNamesServer("127.0.0.1", Local("127.0.0.1:80"), false, none));
  EXPECT_TRUE(HostNamesServer("127.0.0.1", Local("127.0.0.1:443"), true, none));
  EXPECT_TRUE(HostNamesServer("[::1]:7401", Local("[::1]:7401"), false, none));
  EXPECT_FALSE(HostNamesServer("[::1:7401", Local("[::1]:7401"), false, none));
  EXPECT_FALSE(HostNamesServer("127.0.0.1:", Local("127.0.0.1:7401"), false, none));
  EXPECT_FALSE(HostNamesServer("127.0.0.1:x", Local("127.0.0.1:7401"), false, none));
}

}  // namespace
}  // namespace churnlab
