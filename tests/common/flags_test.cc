#include "common/flags.h"

#include "gtest/gtest.h"

namespace churnlab {
namespace {

struct Args {
  std::vector<std::string> strings;
  std::vector<char*> argv;
  explicit Args(std::vector<std::string> a) : strings(std::move(a)) {
    for (std::string& s : strings) argv.push_back(s.data());
  }
  int argc() { return static_cast<int>(argv.size()); }
};

TEST(FlagSetTest, ParsesBothSpellingsAndTypes) {
  std::string name = "x";
  int64_t count = 1;
  double rate = 0;
  bool verbose = false;
  absl::Duration duration;
  FlagSet flags("prog", "test");
  flags.String("name", &name, "");
  flags.Int("count", &count, "");
  flags.Double("rate", &rate, "");
  flags.Bool("verbose", &verbose, "");
  flags.Duration("duration", &duration, "");
  Args args({"prog", "--name=abc", "--count", "7", "--rate=2.5", "--verbose", "--duration=250ms",
             "positional"});
  absl::StatusOr<std::vector<std::string>> rest = flags.Parse(args.argc(), args.argv.data());
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(name, "abc");
  EXPECT_EQ(count, 7);
  EXPECT_EQ(rate, 2.5);
  EXPECT_TRUE(verbose);
  EXPECT_EQ(duration, absl::Milliseconds(250));
  EXPECT_EQ(*rest, std::vector<std::string>{"positional"});
}

// A second flag of a name already taken could never be given: the binary dies at once (its
// first --help), naming it.
TEST(FlagSetDeathTest, AFlagDefinedTwiceIsABug) {
  std::string a, b;
  FlagSet flags("churnlab-test", "");
  flags.String("tls-cert", &a, "one");
  EXPECT_DEATH(flags.String("tls-cert", &b, "two"), "--tls-cert is defined twice");
}

TEST(FlagSetTest, ErrorsNameTheFlagAndTheValue) {
  double rate = 0;
  FlagSet flags("prog", "test");
  flags.Double("rate", &rate, "");
  Args bad_value({"prog", "--rate=fast"});
  absl::StatusOr<std::vector<std::string>> r = flags.Parse(bad_value.argc(), bad_value.argv.data());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "--rate=fast: not a finite number");
  Args unknown({"prog", "--rtae=5"});
  r = flags.Parse(unknown.argc(), unknown.argv.data());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "unknown flag --rtae");
  Args missing({"prog", "--rate"});
  r = flags.Parse(missing.argc(), missing.argv.data());
  EXPECT_EQ(r.status().message(), "flag --rate needs a value");
  // No flag means NaN or infinity (an agent's --max-rate=nan used to pass every check).
  for (const char* text : {"nan", "NaN", "inf", "-inf", "1e999"}) {
    rate = 7;
    Args odd({"prog", std::string("--rate=") + text});
    r = flags.Parse(odd.argc(), odd.argv.data());
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find("not a"), std::string::npos) << r.status();
    EXPECT_EQ(rate, 7) << text;
  }
}

TEST(FlagSetTest, HelpListsEveryFlagWithItsDefault) {
  int64_t count = 42;
  FlagSet flags("prog", "Does things.");
  flags.Int("count", &count, "how many");
  Args help({"prog", "--help"});
  ASSERT_TRUE(flags.Parse(help.argc(), help.argv.data()).ok());
  EXPECT_TRUE(flags.help_requested());
  std::string usage = flags.Usage();
  EXPECT_NE(usage.find("Does things."), std::string::npos);
  EXPECT_NE(usage.find("--count=N"), std::string::npos);
  EXPECT_NE(usage.find("(default: 42)"), std::string::npos);
  EXPECT_NE(usage.find("--version"), std::string::npos);
}

TEST(FlagSetTest, VersionIsAskedForAndIsTheProjects) {
  FlagSet flags("prog", "Does things.");
  Args version({"prog", "--version"});
  ASSERT_TRUE(flags.Parse(version.argc(), version.argv.data()).ok());
  EXPECT_TRUE(flags.version_requested());
  EXPECT_FALSE(flags.help_requested());
  EXPECT_STREQ(kChurnlabVersion, CHURNLAB_VERSION);
  EXPECT_NE(std::string(kChurnlabVersion).find('.'), std::string::npos);
}

}  // namespace
}  // namespace churnlab
