// The CLI's output files: checked before a run, written whole, failures with the kernel's reason.
#include "cli/output_file.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace churnlab {
namespace {

std::string TempDir() {
  char dir[] = "/tmp/churnlab-output-XXXXXX";
  EXPECT_NE(mkdtemp(dir), nullptr);
  return dir;
}

TEST(OutputFileTest, APathThatCannotBeWrittenIsNamedWithItsFlagAndWhy) {
  EXPECT_TRUE(CheckOutputFile("report", "").ok());  // not asked for
  absl::Status missing = CheckOutputFile("report", "/nonexistent/r.json");
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.message(),
            "--report=/nonexistent/r.json: cannot write a file there: No such file or directory");
  const std::string dir = TempDir();
  EXPECT_TRUE(CheckOutputFile("html", dir + "/new.html").ok());
  EXPECT_EQ(CheckOutputFile("report", dir).message(),
            "--report=" + dir + ": cannot write that: Is a directory");
  EXPECT_TRUE(CheckOutputFile("junit", "relative.xml").ok());  // in the working directory
  rmdir(dir.c_str());
}

TEST(OutputFileTest, WritesTheWholeTextOrSaysWhyNot) {
  const std::string dir = TempDir();
  const std::string path = dir + "/r.json";
  ASSERT_TRUE(WriteOutputFile(path, "old and longer", "the report").ok());
  ASSERT_TRUE(WriteOutputFile(path, "{}\n", "the report").ok());  // replaced, not appended
  std::ifstream in(path);
  std::stringstream read;
  read << in.rdbuf();
  EXPECT_EQ(read.str(), "{}\n");
  absl::Status into_dir = WriteOutputFile(dir, "x", "the report");
  EXPECT_EQ(into_dir.message(), "cannot write the report to " + dir + ": Is a directory");
  // Nothing is left beside it: the file written before the rename is removed.
  unlink(path.c_str());
  EXPECT_EQ(rmdir(dir.c_str()), 0) << "files were left in " << dir;
}

}  // namespace
}  // namespace churnlab
