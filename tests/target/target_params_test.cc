// The target's knobs: close modes and delay ranges as users type them, and the validation that
// names the bad field.
#include "target/target_params.h"

#include "gtest/gtest.h"

namespace churnlab {
namespace {

TEST(CloseModeTest, NamesRoundTrip) {
  for (CloseMode mode : {CloseMode::kServer, CloseMode::kClient, CloseMode::kNever}) {
    absl::StatusOr<CloseMode> parsed = ParseCloseMode(CloseModeName(mode));
    ASSERT_TRUE(parsed.ok()) << CloseModeName(mode);
    EXPECT_EQ(*parsed, mode);
  }
}

TEST(CloseModeTest, AnUnknownNameIsRefusedWithTheChoices) {
  absl::StatusOr<CloseMode> parsed = ParseCloseMode("client-fin");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("'client-fin'"), absl::string_view::npos);
  EXPECT_NE(parsed.status().message().find("server, client or never"), absl::string_view::npos);
}

TEST(DelayRangeTest, ARangeAndAFixedDelay) {
  absl::StatusOr<DelayRange> range = ParseDelayRange("10ms..1000ms");
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(range->min, absl::Milliseconds(10));
  EXPECT_EQ(range->max, absl::Seconds(1));
  absl::StatusOr<DelayRange> fixed = ParseDelayRange("50ms");
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ(fixed->min, absl::Milliseconds(50));
  EXPECT_EQ(fixed->max, absl::Milliseconds(50));
}

TEST(DelayRangeTest, MalformedOrBackwardsRangesNameTheText) {
  for (const char* text : {"", "10", "fast", "10ms..", "1s..10ms", "-5ms"}) {
    absl::StatusOr<DelayRange> range = ParseDelayRange(text);
    ASSERT_FALSE(range.ok()) << text;
    EXPECT_EQ(range.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(range.status().message().find(std::string("'") + text + "'"), absl::string_view::npos)
        << range.status();
  }
}

TargetParams Valid() {
  TargetParams p;
  p.listen.push_back(*SocketAddress::ParseIpPort("127.0.0.1:0"));
  return p;
}

TEST(ValidateTargetParamsTest, TheDefaultsWithAnAddressAreValid) {
  EXPECT_TRUE(ValidateTargetParams(Valid()).ok());
}

TEST(ValidateTargetParamsTest, EachBadFieldIsNamed) {
  struct Case {
    const char* field;
    void (*spoil)(TargetParams&);
  };
  const Case cases[] = {
      {"listen", [](TargetParams& p) { p.listen.clear(); }},
      {"backlog", [](TargetParams& p) { p.backlog = 0; }},
      {"accept_rate", [](TargetParams& p) { p.accept_rate = -1; }},
      {"threads", [](TargetParams& p) { p.threads = 0; }},
      {"threads", [](TargetParams& p) { p.threads = 257; }},
      {"max_leaked", [](TargetParams& p) { p.max_leaked = -1; }},
      {"delay", [](TargetParams& p) { p.delay.max = absl::Minutes(11); }},
  };
  for (const Case& c : cases) {
    TargetParams p = Valid();
    c.spoil(p);
    absl::Status status = ValidateTargetParams(p);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(status.message().rfind(c.field, 0), 0u) << status;
  }
}

}  // namespace
}  // namespace churnlab
