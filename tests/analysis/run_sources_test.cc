#include "analysis/run_sources.h"

#include "gtest/gtest.h"

namespace churnlab::analysis {
namespace {

v1::Hello DualStack() {
  v1::Hello hello;
  hello.set_name("a1");
  hello.add_source_ips("127.0.0.2");
  hello.add_source_ips("::1");
  hello.add_source_ips("127.0.0.3");
  return hello;
}

v1::RunSpec SpecTo(const std::string& target) {
  v1::RunSpec spec;
  spec.add_targets(target);
  return spec;
}

// The spec parsed once, as the scheduler and `compare` do.
RunSources SourcesOf(const v1::RunSpec& spec) { return RunSources(ShapeOf(spec), spec); }

TEST(RunSourcesTest, OffersTheTargetsFamilyLessTheExclusions) {
  v1::RunSpec v4 = SpecTo("127.0.0.1:9000");
  v4.add_exclude_source_ips("127.0.0.2");
  EXPECT_EQ(SourcesOf(v4).Offered(DualStack()), std::vector<std::string>{"127.0.0.3"});
  EXPECT_EQ(SourcesOf(SpecTo("[::1]:9000")).Offered(DualStack()), std::vector<std::string>{"::1"});
}

// compare leaves out the address its single run used: a dual-stack agent whose one IPv4 address
// is excluded has none left for an IPv4 run, though ::1 remains (compare used to keep it, and
// the spread run fell back to the exhausted source).
TEST(RunSourcesTest, AnAddressOfTheOtherFamilyDoesNotCount) {
  v1::Hello hello;
  hello.add_source_ips("127.0.0.2");
  hello.add_source_ips("::1");
  v1::RunSpec spec = SpecTo("127.0.0.1:9000");
  spec.add_exclude_source_ips("127.0.0.2");
  EXPECT_EQ(SourcesOf(spec).WhyNone(hello), "offers no source IP (that the spec does not exclude)");
  v1::Hello v6_only;
  v6_only.add_source_ips("::1");
  EXPECT_EQ(SourcesOf(SpecTo("127.0.0.1:9000")).WhyNone(v6_only),
            "offers no source IP of the targets' family (IPv4)");
  EXPECT_EQ(SourcesOf(SpecTo("127.0.0.1:9000")).WhyNone(DualStack()), "");
}

}  // namespace
}  // namespace churnlab::analysis
