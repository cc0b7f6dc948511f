// JUnit XML for CI systems (Jenkins, GitLab, GitHub Actions' test reporters):
// `churnlab run --junit=FILE` and `churnlab compare --junit=FILE`. Each run is a <testsuite>
// with one test case for the run's completion and one per threshold; a failure carries the
// observed value and the rule. Written with libxml2, which escapes what XML needs escaped.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "churnlab/v1/report.pb.h"

namespace churnlab {

struct JunitRun {
  std::string suite;  // the suite's name: "churnlab run NAME", "churnlab compare NAME: ..."
  // The final report; nullptr when the run could not start, and then `error` says why (the
  // completion case is an <error>).
  const v1::RunReport* report = nullptr;
  std::string error;
};

// The document: <testsuites> holding one <testsuite> per run, in order. INTERNAL when libxml2
// fails to write (out of memory).
absl::StatusOr<std::string> JunitXml(const std::vector<JunitRun>& runs);

// JunitXml written to `path`; UNAVAILABLE naming the path when it cannot be written.
absl::Status WriteJunitFile(const std::string& path, const std::vector<JunitRun>& runs);

}  // namespace churnlab
