// The Prometheus text exposition (format 0.0.4) as MetricFamily writes it: HELP and TYPE lines,
// sample lines with escaped label values, numbers a scraper parses back exactly, and `le` bounds.
#include "http/prometheus_text.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace churnlab {
namespace {

std::string Exposition(const MetricFamily& family) {
  std::string out;
  family.AppendTo(&out);
  return out;
}

// The value of the exposition's only sample, as written.
std::string ValueText(double value) {
  MetricFamily f("v", "gauge", "A value.");
  f.Add({}, value);
  std::string out = Exposition(f);
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 3u) << out;
  if (lines.size() != 3u) return "";
  EXPECT_EQ(lines[2].rfind("v ", 0), 0u) << out;
  return lines[2].substr(2);
}

TEST(PrometheusTextTest, AFamilyWithoutSamplesIsStillDescribed) {
  MetricFamily f("churnlab_things_total", "counter", "Things that happened.");
  EXPECT_EQ(f.name(), "churnlab_things_total");
  EXPECT_EQ(Exposition(f),
            "# HELP churnlab_things_total Things that happened.\n"
            "# TYPE churnlab_things_total counter\n");
}

TEST(PrometheusTextTest, SamplesFollowTheirHelpAndTypeInTheOrderAdded) {
  MetricFamily f("churnlab_agents", "gauge", "Agents by state.");
  f.Add({{"state", "idle"}}, 2);
  f.Add({{"state", "running"}, {"run", "r-1"}}, 1);
  f.Add({}, 3);
  EXPECT_EQ(Exposition(f),
            "# HELP churnlab_agents Agents by state.\n"
            "# TYPE churnlab_agents gauge\n"
            "churnlab_agents{state=\"idle\"} 2\n"
            "churnlab_agents{state=\"running\",run=\"r-1\"} 1\n"
            "churnlab_agents 3\n");
}

TEST(PrometheusTextTest, AppendToAddsToWhatIsAlreadyThere) {
  MetricFamily a("a", "gauge", "A.");
  MetricFamily b("b", "counter", "B.");
  a.Add({}, 1);
  b.Add({}, 2);
  std::string out = "# leading\n";
  a.AppendTo(&out);
  b.AppendTo(&out);
  EXPECT_EQ(out,
            "# leading\n# HELP a A.\n# TYPE a gauge\na 1\n"
            "# HELP b B.\n# TYPE b counter\nb 2\n");
}

TEST(PrometheusTextTest, LabelValuesEscapeBackslashQuoteAndNewlineOnly) {
  MetricFamily f("m", "gauge", "M.");
  // The format escapes exactly these three; everything else (UTF-8, tabs, braces, commas,
  // equals signs) stands as it is inside the quotes.
  f.Add({{"path", "C:\\dir\\"}, {"say", "a \"b\""}, {"lines", "one\ntwo"}}, 1);
  f.Add({{"other", "tab\there {x=1,y} é"}}, 2);
  f.Add({{"empty", ""}}, 3);
  EXPECT_EQ(Exposition(f),
            "# HELP m M.\n# TYPE m gauge\n"
            "m{path=\"C:\\\\dir\\\\\",say=\"a \\\"b\\\"\",lines=\"one\\ntwo\"} 1\n"
            "m{other=\"tab\there {x=1,y} é\"} 2\n"
            "m{empty=\"\"} 3\n");
}

TEST(PrometheusTextTest, HelpTextEscapesBackslashAndNewlineButNotQuotes) {
  MetricFamily f("m", "gauge", "Bytes in C:\\tmp, \"quoted\",\nper run.");
  EXPECT_EQ(Exposition(f), "# HELP m Bytes in C:\\\\tmp, \"quoted\",\\nper run.\n# TYPE m gauge\n");
}

TEST(PrometheusTextTest, ASampleIsOneLineWhateverItsLabelsHold) {
  MetricFamily f("m", "gauge", "M.");
  f.Add({{"a", "x\ny\r\nz"}, {"b", "\n\n"}}, 1);
  std::string out = Exposition(f);
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_EQ(lines[2], "m{a=\"x\\ny?\\nz\",b=\"\\n\\n\"} 1");
}

// CR, ESC and the other control characters but tab have no escape in the format: a terminal
// showing a scrape would act on them, so they become '?'.
TEST(PrometheusTextTest, ControlCharactersInLabelValuesBecomeQuestionMarks) {
  MetricFamily f("m", "gauge", "M.");
  f.Add({{"name", "evil\x1b[2J\r\x07\x7f"}}, 1);
  EXPECT_EQ(Exposition(f), "# HELP m M.\n# TYPE m gauge\nm{name=\"evil?[2J???\"} 1\n");
}

TEST(PrometheusTextTest, IntegersAreWrittenWithoutAFractionOrExponent) {
  EXPECT_EQ(ValueText(0), "0");
  EXPECT_EQ(ValueText(42), "42");
  EXPECT_EQ(ValueText(-3), "-3");
  EXPECT_EQ(ValueText(1800000000), "1800000000");  // a start time in Unix seconds
  // Counts stay exact up to 2^53, the largest a double holds without gaps.
  EXPECT_EQ(ValueText(9007199254740992.0), "9007199254740992");
}

TEST(PrometheusTextTest, SpecialValuesUseTheFormatsSpelling) {
  EXPECT_EQ(ValueText(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(ValueText(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(ValueText(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(PrometheusTextTest, FractionsParseBackToTheSameDouble) {
  for (double value : {0.5, 0.1, 1.0 / 3, 1800000000.123456, 1e-9, 2.5e-300, 1e300, -7.25,
                       std::numeric_limits<double>::max(), std::numeric_limits<double>::min(),
                       std::numeric_limits<double>::denorm_min()}) {
    std::string text = ValueText(value);
    ASSERT_FALSE(text.empty());
    char* end = nullptr;
    double parsed = std::strtod(text.c_str(), &end);
    EXPECT_EQ(*end, '\0') << text;
    EXPECT_EQ(parsed, value) << text;
    EXPECT_EQ(text.find(' '), std::string::npos) << text;
  }
}

TEST(PrometheusTextTest, AHistogramsPartsShareTheFamilyNameWithTheirSuffixes) {
  MetricFamily f("churnlab_connect_latency_seconds", "histogram", "Connect latency.");
  f.Add({{"name", "n"}, {"le", LeSeconds(8191)}}, 1, "_bucket");
  f.Add({{"name", "n"}, {"le", "+Inf"}}, 4, "_bucket");
  f.Add({{"name", "n"}}, 0.25, "_sum");
  f.Add({{"name", "n"}}, 4, "_count");
  EXPECT_EQ(Exposition(f),
            "# HELP churnlab_connect_latency_seconds Connect latency.\n"
            "# TYPE churnlab_connect_latency_seconds histogram\n"
            "churnlab_connect_latency_seconds_bucket{name=\"n\",le=\"0.000008191\"} 1\n"
            "churnlab_connect_latency_seconds_bucket{name=\"n\",le=\"+Inf\"} 4\n"
            "churnlab_connect_latency_seconds_sum{name=\"n\"} 0.25\n"
            "churnlab_connect_latency_seconds_count{name=\"n\"} 4\n");
}

TEST(PrometheusTextTest, LeSecondsDropsTrailingZerosOfTheFractionOnly) {
  EXPECT_EQ(LeSeconds(8191), "0.000008191");
  EXPECT_EQ(LeSeconds(1), "0.000000001");
  EXPECT_EQ(LeSeconds(1000), "0.000001");
  EXPECT_EQ(LeSeconds(1500000), "0.0015");
  EXPECT_EQ(LeSeconds(0), "0");
  EXPECT_EQ(LeSeconds(1000000000), "1");
  EXPECT_EQ(LeSeconds(1500000000), "1.5");
  // Zeros of the whole seconds stay: 10 s is "10", not "1".
  EXPECT_EQ(LeSeconds(10000000000), "10");
  EXPECT_EQ(LeSeconds(60000000000), "60");
  EXPECT_EQ(LeSeconds(12345678901), "12.345678901");
}

TEST(PrometheusTextTest, LeSecondsParsesBackToTheBoundInNanoseconds) {
  for (int64_t nanos : {int64_t{1}, int64_t{8191}, int64_t{1} << 20, int64_t{999999999},
                        int64_t{1} << 33, int64_t{123456789012}}) {
    std::string text = LeSeconds(nanos);
    double seconds = std::strtod(text.c_str(), nullptr);
    EXPECT_EQ(std::llround(seconds * 1e9), nanos) << text;
  }
}

}  // namespace
}  // namespace churnlab
