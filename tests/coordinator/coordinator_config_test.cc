// churnlab-coordinator's flags and their rules, without starting anything.
#include "coordinator/coordinator_config.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace churnlab {
namespace {

TEST(CoordinatorConfigTest, LoopbackWithoutATokenIsFine) {
  CoordinatorFlags flags;
  flags.grpc_listen = "127.0.0.1:0";
  flags.http_listen = "";
  absl::StatusOr<CoordinatorConfig> config = MakeCoordinatorConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->grpc_listen.is_loopback());
  EXPECT_FALSE(config->http_listen.has_value());
}

TEST(CoordinatorConfigTest, RefusesAnOpenListenerWithoutATokenNamingTheFlag) {
  CoordinatorFlags flags;
  flags.http_listen = "0.0.0.0:7401";
  absl::StatusOr<CoordinatorConfig> config = MakeCoordinatorConfig(flags);
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("--http-listen=0.0.0.0:7401 is not loopback"),
            absl::string_view::npos)
      << config.status();
  flags.insecure = true;
  EXPECT_TRUE(MakeCoordinatorConfig(flags).ok());
}

TEST(CoordinatorConfigTest, NamesTheBadValue) {
  CoordinatorFlags flags;
  flags.grpc_listen = "localhost";
  EXPECT_NE(MakeCoordinatorConfig(flags).status().message().find("--grpc-listen"),
            absl::string_view::npos);
  flags = CoordinatorFlags{};
  flags.http_max_streams = 0;
  EXPECT_NE(MakeCoordinatorConfig(flags).status().message().find("--http-max-streams"),
            absl::string_view::npos);
  for (int64_t agents : {int64_t{0}, int64_t{-1}, kMaxAgentsLimit + 1}) {
    flags = CoordinatorFlags{};
    flags.max_agents = agents;
    EXPECT_NE(MakeCoordinatorConfig(flags).status().message().find(
                  absl::StrCat("--max-agents=", agents, ": not in 1..1000000")),
              absl::string_view::npos);
  }
  flags = CoordinatorFlags{};
  flags.max_agents = kMaxAgentsLimit;
  EXPECT_EQ(MakeCoordinatorConfig(flags)->max_agents, 1'000'000u);
  flags = CoordinatorFlags{};
  flags.http_plaintext_listen = "127.0.0.1:0";  // without TLS
  EXPECT_NE(MakeCoordinatorConfig(flags).status().message().find("needs TLS"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace churnlab
