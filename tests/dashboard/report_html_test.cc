#include "dashboard/report_html.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"

namespace churnlab {
namespace {

size_t CountOf(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

v1::RunReport Report(const std::string& id, const std::string& name) {
  v1::RunReport r;
  r.set_run_id(id);
  r.set_state(v1::RunReport::STATE_COMPLETED);
  r.set_verdict(v1::RunReport::VERDICT_PASS);
  r.mutable_spec()->set_name(name);
  r.add_observations("a note with <!-- and </script> & more");
  v1::SeriesPoint* p = r.add_series();
  p->set_t_s(1);
  p->set_interval_s(1);
  p->set_succeeded(10);
  return r;
}

// The <script> elements: the data, uPlot, report_charts.js, report_view.js, report_page.js.
constexpr size_t kScripts = 5;

TEST(ReportHtmlTest, WhatARunSaysCannotEndTheDataOrBecomeMarkup) {
  const std::string html =
      ReportsToHtml({Report("r-1", "</script><script>window.pwned=1</script>")});
  EXPECT_EQ(CountOf(html, "</script>"), kScripts);
  EXPECT_EQ(CountOf(html, "<script"), kScripts);
  EXPECT_FALSE(absl::StrContains(html, "window.pwned=1</"));
  EXPECT_TRUE(absl::StrContains(html, "\\u003c/script\\u003e\\u003cscript\\u003ewindow.pwned=1"));
  // The title is text: the name escaped, in <title> and the header.
  EXPECT_EQ(CountOf(html, "churnlab run r-1 — &lt;/script&gt;&lt;script&gt;window.pwned=1"), 2u);
  EXPECT_FALSE(absl::StrContains(html, "<!-- and"));
  EXPECT_TRUE(absl::StrContains(html, "\\u003c!-- and \\u003c/script\\u003e \\u0026 more"));
}

TEST(ReportHtmlTest, HoldsEverythingItNeedsAndAsksNothingOfTheNetwork) {
  const std::string html = ReportsToHtml({Report("r-1", "one")});
  // uPlot and the dashboard's own drawing code are inlined; no markers are left.
  EXPECT_TRUE(absl::StrContains(html, "var uPlot"));
  EXPECT_TRUE(absl::StrContains(html, "class RunView"));
  EXPECT_TRUE(absl::StrContains(html, "function rateChart"));
  EXPECT_TRUE(absl::StrContains(html, ".uplot"));
  EXPECT_TRUE(absl::StrContains(html, ".budget-sentence"));
  EXPECT_FALSE(absl::StrContains(html, "<!--churnlab:"));
  // Nothing to fetch, and a policy that forbids fetching anything.
  EXPECT_FALSE(absl::StrContains(html, " src="));
  EXPECT_FALSE(absl::StrContains(html, "href=\"http"));
  EXPECT_FALSE(absl::StrContains(html, "href=\"/"));
  EXPECT_TRUE(absl::StrContains(html, "default-src 'none'"));
  EXPECT_TRUE(absl::StrContains(html, "\"run_id\": \"r-1\""));
}

TEST(ReportHtmlTest, SeveralRunsSideBySide) {
  const std::string html =
      ReportsToHtml({Report("r-1", "a"), Report("r-2", "b"), Report("r-3", "c")});
  EXPECT_EQ(CountOf(html, "churnlab: 3 runs side by side"), 2u);
  const size_t one = html.find("\"run_id\": \"r-1\"");
  const size_t two = html.find("\"run_id\": \"r-2\"");
  const size_t three = html.find("\"run_id\": \"r-3\"");
  ASSERT_NE(three, std::string::npos);
  EXPECT_LT(one, two);
  EXPECT_LT(two, three);
}

TEST(ReportHtmlTest, ScriptSafe) {
  EXPECT_EQ(ScriptSafe("a = '</script>'; b = /<!--/;"), "a = '<\\/script>'; b = /<\\!--/;");
  EXPECT_EQ(ScriptSafe("x < y"), "x < y");
}

}  // namespace
}  // namespace churnlab
