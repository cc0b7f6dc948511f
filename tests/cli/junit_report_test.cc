// The JUnit XML of `churnlab run|compare --junit`: valid against the subset of JUnit that CI
// systems read (tests/cli/junit.xsd, checked with xmllint), one test case per threshold and one
// for the run's completion, failures carrying the observed value and the rule.
#include "cli/junit_report.h"

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/child_process.h"
#include "tests/support/source_path.h"

namespace churnlab {
namespace {

const std::string kSchema = testing::SourcePath("/tests/cli/junit.xsd");

// xmllint's verdict on `xml` against the schema: its exit code and what it said.
testing::CommandResult Validate(const std::string& xml) {
  const std::string dir = testing::MakeTempDir();
  const std::string path = dir + "/junit.xml";
  std::ofstream(path) << xml;
  absl::StatusOr<testing::CommandResult> r =
      testing::RunCommand({"xmllint", "--noout", "--schema", kSchema, path});
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : testing::CommandResult{-1, ""};
}

// XPath over a parsed document: a number (count(), an attribute) or a string.
class Xml {
 public:
  explicit Xml(const std::string& text)
      : doc_(xmlReadMemory(text.data(), static_cast<int>(text.size()), "junit.xml", nullptr,
                           XML_PARSE_NONET)) {}
  ~Xml() {
    if (doc_ != nullptr) xmlFreeDoc(doc_);
  }
  bool ok() const { return doc_ != nullptr; }
  std::string String(const std::string& xpath) const {
    xmlXPathContext* context = xmlXPathNewContext(doc_);
    xmlXPathObject* result = xmlXPathEvalExpression(
        reinterpret_cast<const xmlChar*>(absl::StrCat("string(", xpath, ")").c_str()), context);
    std::string out = result != nullptr && result->stringval != nullptr
                          ? reinterpret_cast<const char*>(result->stringval)
                          : "<no result>";
    xmlXPathFreeObject(result);
    xmlXPathFreeContext(context);
    return out;
  }
  double Number(const std::string& xpath) const {
    xmlXPathContext* context = xmlXPathNewContext(doc_);
    xmlXPathObject* result = xmlXPathEvalExpression(
        reinterpret_cast<const xmlChar*>(absl::StrCat("number(", xpath, ")").c_str()), context);
    double out = result != nullptr ? result->floatval : -1;
    xmlXPathFreeObject(result);
    xmlXPathFreeContext(context);
    return out;
  }

 private:
  xmlDoc* doc_;
};

v1::RunReport Passed() {
  v1::RunReport r;
  r.set_run_id("r-20270115-080000-aaaa");
  r.mutable_spec()->set_name("time-wait");
  r.set_state(v1::RunReport::STATE_COMPLETED);
  r.set_verdict(v1::RunReport::VERDICT_PASS);
  r.set_started_at("2027-01-15T08:00:00+00:00");
  r.set_duration_s(8.25);
  r.mutable_totals()->set_attempted(1600);
  r.mutable_totals()->set_succeeded(1600);
  v1::ThresholdResult* t = r.add_thresholds();
  t->set_expression("error_rate < 0.01");
  t->set_observed(0);
  t->set_passed(true);
  t = r.add_thresholds();
  t->set_expression("connect_p99 < 50ms");
  t->set_observed(1.5);
  t->set_passed(true);
  return r;
}

// A run that went wrong in every way, with names that are not XML-friendly.
v1::RunReport Failed() {
  v1::RunReport r = Passed();
  r.mutable_spec()->set_name("a<b & \"c\"\x1b]0;x");
  r.set_state(v1::RunReport::STATE_CANCELLED);
  r.set_verdict(v1::RunReport::VERDICT_FAIL);
  r.mutable_thresholds(0)->set_observed(0.34);
  r.mutable_thresholds(0)->set_passed(false);
  r.mutable_thresholds(0)->set_is_default(true);
  v1::AgentReport* agent = r.add_agents();
  agent->set_name("a2");
  agent->set_problem("lost 3.1s into the run: its stream closed");
  return r;
}

TEST(JunitReportTest, OneCasePerThresholdAndOneForCompletion) {
  v1::RunReport passed = Passed();
  absl::StatusOr<std::string> xml = JunitXml({{"churnlab run time-wait", &passed, ""}});
  ASSERT_TRUE(xml.ok()) << xml.status();
  testing::CommandResult valid = Validate(*xml);
  EXPECT_EQ(valid.exit_code, 0) << valid.output << *xml;
  Xml doc(*xml);
  ASSERT_TRUE(doc.ok()) << *xml;
  EXPECT_EQ(doc.Number("count(/testsuites/testsuite)"), 1);
  EXPECT_EQ(doc.Number("count(//testcase)"), 3);
  EXPECT_EQ(doc.Number("/testsuites/testsuite/@tests"), 3);
  EXPECT_EQ(doc.Number("/testsuites/testsuite/@failures"), 0);
  EXPECT_EQ(doc.Number("count(//failure) + count(//error)"), 0);
  EXPECT_EQ(doc.String("//testcase[1]/@name"), "run completes");
  EXPECT_EQ(doc.String("//testcase[1]/@time"), "8.250");
  EXPECT_EQ(doc.String("//testcase[2]/@name"), "threshold error_rate < 0.01");
  EXPECT_EQ(doc.String("//testcase[3]/@name"), "threshold connect_p99 < 50ms");
  EXPECT_EQ(doc.String("/testsuites/testsuite/@timestamp"), "2027-01-15T08:00:00");
  EXPECT_EQ(doc.String("//property[@name='run_id']/@value"), "r-20270115-080000-aaaa");
  EXPECT_NE(doc.String("//testsuite/system-out").find("verdict pass"), std::string::npos);
}

TEST(JunitReportTest, FailuresCarryTheObservedValueTheRuleAndWhyTheRunDidNotComplete) {
  v1::RunReport passed = Passed();
  v1::RunReport failed = Failed();
  absl::StatusOr<std::string> xml =
      JunitXml({{"churnlab compare x: single source", &passed, ""},
                {"churnlab compare x: distributed", &failed, ""},
                {"churnlab compare x: third", nullptr, "no eligible agent"}});
  ASSERT_TRUE(xml.ok()) << xml.status();
  testing::CommandResult valid = Validate(*xml);
  EXPECT_EQ(valid.exit_code, 0) << valid.output << *xml;
  Xml doc(*xml);
  ASSERT_TRUE(doc.ok()) << *xml;
  // Every count agrees with the elements it counts, per suite and in all.
  for (int i = 1; i <= 3; ++i) {
    const std::string suite = absl::StrCat("/testsuites/testsuite[", i, "]");
    EXPECT_EQ(doc.Number(suite + "/@tests"), doc.Number("count(" + suite + "/testcase)")) << i;
    EXPECT_EQ(doc.Number(suite + "/@failures"), doc.Number("count(" + suite + "//failure)")) << i;
    EXPECT_EQ(doc.Number(suite + "/@errors"), doc.Number("count(" + suite + "//error)")) << i;
  }
  EXPECT_EQ(doc.Number("/testsuites/@tests"), 7);
  EXPECT_EQ(doc.Number("/testsuites/@failures"), 2);
  EXPECT_EQ(doc.Number("/testsuites/@errors"), 1);

  const std::string second = "/testsuites/testsuite[2]";
  EXPECT_EQ(doc.String(second + "/testcase[2]/failure/@message"),
            "observed 34%, limit < 1%; the rule is error_rate < 0.01 (the default: the spec sets "
            "none)");
  EXPECT_EQ(doc.String(second + "/testcase[2]/failure/@type"), "threshold");
  EXPECT_EQ(doc.Number("count(" + second + "/testcase[3]/failure)"), 0);
  const std::string completion = doc.String(second + "/testcase[1]/failure/@message");
  EXPECT_NE(completion.find("the run ended cancelled"), std::string::npos) << completion;
  EXPECT_NE(completion.find("agent a2: lost 3.1s into the run"), std::string::npos) << completion;
  // The name arrives as the user wrote it, less the control character (escaped, not obeyed).
  EXPECT_EQ(doc.String(second + "/properties/property[@name='name']/@value"), "a<b & \"c\"\\e]0;x");
  EXPECT_EQ(doc.String("/testsuites/testsuite[3]/testcase/error/@message"), "no eligible agent");
}

// The schema is not a formality: it refuses what CI readers choke on.
TEST(JunitReportTest, TheSchemaRefusesWhatReadersDoNotAccept) {
  for (const std::string& bad : {
           std::string(R"(<testsuites><testsuite tests="1"><testcase name="x"/></testsuite>
                          </testsuites>)"),                        // a suite without a name
           std::string(R"(<testsuites><testsuite name="s" tests="1"><testcase time="1,5"
                          name="x"/></testsuite></testsuites>)"),  // a time with a comma
           std::string(R"(<testsuites><testsuite name="s" tests="1"><testcase name="x">
                          <failure/><error/></testcase></testsuite></testsuites>)"),
       }) {
    EXPECT_NE(Validate(bad).exit_code, 0) << bad;
  }
}

TEST(JunitReportTest, AnUnwritableFileIsAnError) {
  v1::RunReport passed = Passed();
  absl::Status s = WriteJunitFile("/nonexistent-dir/junit.xml", {{"s", &passed, ""}});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("/nonexistent-dir/junit.xml"), std::string::npos);
}

}  // namespace
}  // namespace churnlab
