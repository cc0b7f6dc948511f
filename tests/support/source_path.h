// The source tree the tests were configured from (scenarios, the dashboard, schemas, README).
// Compiled into one generated file (source_path.cc.in) rather than passed as a -D to every test
// file, so a second clone's test objects are the same as the first's and a compiler cache
// reuses them.
#pragma once

#include <string>

namespace churnlab::testing {

// <source tree>/<relative>; `relative` starts with '/' or is empty.
std::string SourcePath(const std::string& relative);

}  // namespace churnlab::testing
