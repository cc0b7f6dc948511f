#include "cli/junit_report.h"

#include <libxml/tree.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/output_file.h"
#include "cli/report_format.h"
#include "common/terminal_text.h"
#include "proto/message_json.h"
#include "proto/report_export.h"
#include "proto/threshold.h"

namespace churnlab {
namespace {

struct DocFree {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;

const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

// Text from others (names, an agent's problem) as XML 1.0 can hold it: TerminalSafe escapes
// every control character and byte that is not UTF-8, which XML forbids too.
std::string XmlText(const std::string& text) { return TerminalSafe(text); }

void Attr(xmlNode* node, const char* name, const std::string& value) {
  xmlNewProp(node, X(name), X(value.c_str()));
}

// <name>text</name> under `parent` (the text escaped by libxml2).
xmlNode* Child(xmlNode* parent, const char* name, const std::string& text = "") {
  return xmlNewTextChild(parent, nullptr, X(name), text.empty() ? nullptr : X(text.c_str()));
}

std::string Seconds(double s) { return absl::StrFormat("%.3f", s < 0 ? 0 : s); }

// Why the run did not complete as asked; empty when it did.
std::vector<std::string> CompletionProblems(const v1::RunReport& r) {
  std::vector<std::string> problems;
  if (r.state() != v1::RunReport::STATE_COMPLETED) {
    problems.push_back(absl::StrCat("the run ended ", Word(r.state())));
  }
  for (const v1::AgentReport& agent : r.agents()) {
    if (!agent.problem().empty()) {
      problems.push_back(absl::StrCat("agent ", agent.name(), ": ", agent.problem()));
    }
  }
  if (!r.store_error().empty()) {
    problems.push_back(
        absl::StrCat("the coordinator's run store could not keep it: ", r.store_error()));
  }
  return problems;
}

// The run's start as JUnit's timestamp wants it: ISO 8601 without a zone (UTC here).
std::string Timestamp(const v1::RunReport& r) {
  std::optional<absl::Time> start = RunStart(r);
  if (!start) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%S", *start, absl::UTCTimeZone());
}

void AddProperties(xmlNode* suite, const v1::RunReport& r) {
  xmlNode* properties = Child(suite, "properties");
  auto property = [&](const char* name, const std::string& value) {
    xmlNode* p = Child(properties, "property");
    Attr(p, "name", name);
    Attr(p, "value", XmlText(value));
  };
  property("run_id", r.run_id());
  property("name", r.spec().name());
  property("state", Word(r.state()));
  property("verdict", Word(r.verdict()));
  property("started_at", r.started_at());
  property("requested_rate", absl::StrFormat("%g", r.requested_rate()));
  property("achieved_rate", absl::StrFormat("%g", r.achieved_rate()));
  property("attempted", absl::StrCat(r.totals().attempted()));
  property("succeeded", absl::StrCat(r.totals().succeeded()));
  property("failed", absl::StrCat(r.totals().failed()));
  property("verdict_reasons", absl::StrJoin(r.verdict_reasons(), " | "));
}

// <testcase> with a <failure> (or <error>) when `problems` is not empty; returns whether it failed.
bool AddCase(xmlNode* suite, const std::string& classname, const std::string& name, double time,
             const char* outcome, const char* type, const std::vector<std::string>& problems) {
  xmlNode* test = Child(suite, "testcase");
  Attr(test, "name", XmlText(name));
  Attr(test, "classname", XmlText(classname));
  Attr(test, "time", Seconds(time));
  if (problems.empty()) return false;
  xmlNode* failure = Child(test, outcome, XmlText(absl::StrJoin(problems, "\n")) + "\n");
  Attr(failure, "message", XmlText(absl::StrJoin(problems, "; ")));
  Attr(failure, "type", type);
  return true;
}

void AddSuite(xmlNode* root, int id, const JunitRun& run, int* tests, int* failures, int* errors,
              double* time) {
  xmlNode* suite = Child(root, "testsuite");
  const std::string classname = run.suite;
  int suite_tests = 1;
  int suite_failures = 0;
  double duration = 0;
  if (run.report == nullptr) {
    AddCase(suite, classname, "run completes", 0, "error", "could-not-run", {run.error});
  } else {
    const v1::RunReport& r = *run.report;
    duration = r.duration_s();
    AddProperties(suite, r);
    suite_failures += AddCase(suite, classname, "run completes", duration, "failure", "completion",
                              CompletionProblems(r));
    for (const v1::ThresholdResult& t : r.thresholds()) {
      ++suite_tests;
      std::vector<std::string> problems;
      if (!t.passed()) {
        absl::StatusOr<Threshold> parsed = ParseThreshold(t.expression());
        problems.push_back(absl::StrCat(
            "observed ",
            parsed.ok() ? FormatMetricValue(parsed->metric, t.observed())
                        : absl::StrFormat("%g", t.observed()),
            parsed.ok() ? absl::StrCat(", limit ", OpText(parsed->op), " ",
                                       FormatMetricValue(parsed->metric, parsed->value))
                        : "",
            "; the rule is ", t.expression(),
            t.is_default() ? " (the default: the spec sets none)" : ""));
      }
      suite_failures += AddCase(suite, classname, absl::StrCat("threshold ", t.expression()), 0,
                                "failure", "threshold", problems);
    }
    Child(suite, "system-out", FormatReportText(r));
  }
  // The counts are known once the cases are in; attributes keep the order they are set in.
  Attr(suite, "name", XmlText(run.suite));
  Attr(suite, "id", absl::StrCat(id));
  Attr(suite, "tests", absl::StrCat(suite_tests));
  Attr(suite, "failures", absl::StrCat(suite_failures));
  Attr(suite, "errors", run.report == nullptr ? "1" : "0");
  Attr(suite, "skipped", "0");
  Attr(suite, "time", Seconds(duration));
  if (run.report != nullptr) {
    if (std::string ts = Timestamp(*run.report); !ts.empty()) Attr(suite, "timestamp", ts);
  }
  *tests += suite_tests;
  *failures += suite_failures;
  *errors += run.report == nullptr ? 1 : 0;
  *time += duration;
}

}  // namespace

absl::StatusOr<std::string> JunitXml(const std::vector<JunitRun>& runs) {
  Doc doc(xmlNewDoc(X("1.0")));
  if (doc == nullptr) return absl::InternalError("libxml2: cannot make a document");
  xmlNode* root = xmlNewDocNode(doc.get(), nullptr, X("testsuites"), nullptr);
  xmlDocSetRootElement(doc.get(), root);
  int tests = 0;
  int failures = 0;
  int errors = 0;
  double time = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    AddSuite(root, static_cast<int>(i), runs[i], &tests, &failures, &errors, &time);
  }
  Attr(root, "name", "churnlab");
  Attr(root, "tests", absl::StrCat(tests));
  Attr(root, "failures", absl::StrCat(failures));
  Attr(root, "errors", absl::StrCat(errors));
  Attr(root, "time", Seconds(time));
  xmlChar* text = nullptr;
  int size = 0;
  xmlDocDumpFormatMemoryEnc(doc.get(), &text, &size, "UTF-8", /*format=*/1);
  if (text == nullptr) return absl::InternalError("libxml2: cannot write the JUnit document");
  std::string out(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
  xmlFree(text);
  return out;
}

absl::Status WriteJunitFile(const std::string& path, const std::vector<JunitRun>& runs) {
  absl::StatusOr<std::string> xml = JunitXml(runs);
  if (!xml.ok()) return xml.status();
  return WriteOutputFile(path, *xml, "the JUnit report");
}

}  // namespace churnlab
