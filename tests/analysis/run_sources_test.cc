#include "analysis/run_sources.h"

#include "gtest/gtest.h"
#include "proto/hello.h"
#include "tests/support/addresses.h"

namespace churnlab::analysis {
namespace {

using churnlab::testing::Ips;
using churnlab::testing::IpStrings;

std::vector<SocketAddress> DualStack() { return Ips({"127.0.0.2", "::1", "127.0.0.3"}); }

v1::RunSpec SpecTo(const std::string& target) {
  v1::RunSpec spec;
  spec.add_targets(target);
  return spec;
}

// The spec parsed once, as the scheduler and `compare` do.
RunSources SourcesOf(const v1::RunSpec& spec) { return RunSources(ShapeOf(spec)); }

TEST(RunSourcesTest, OffersTheTargetsFamilyLessTheExclusions) {
  v1::RunSpec v4 = SpecTo("127.0.0.1:9000");
  v4.add_exclude_source_ips("127.0.0.2");
  EXPECT_EQ(IpStrings(SourcesOf(v4).Offered(DualStack())), std::vector<std::string>{"127.0.0.3"});
  EXPECT_EQ(IpStrings(SourcesOf(SpecTo("[::1]:9000")).Offered(DualStack())),
            std::vector<std::string>{"::1"});
}

// An exclusion names an address, not its spelling: "::0:1" is ::1, and a hello's text is
// parsed once where it enters (SourceAddressesOf), so both sides compare as addresses.
TEST(RunSourcesTest, AnExclusionMatchesTheAddressWhateverItsSpelling) {
  v1::RunSpec spec = SpecTo("[::1]:9000");
  spec.add_exclude_source_ips("0:0::0:1");
  v1::Hello hello;
  hello.add_source_ips("::1");
  hello.add_source_ips("::2");
  EXPECT_EQ(IpStrings(SourcesOf(spec).Offered(SourceAddressesOf(hello))),
            std::vector<std::string>{"::2"});
}

// compare leaves out the address its single run used: a dual-stack agent whose one IPv4 address
// is excluded has none left for an IPv4 run, though ::1 remains (compare used to keep it, and
// the spread run fell back to the exhausted source).
TEST(RunSourcesTest, AnAddressOfTheOtherFamilyDoesNotCount) {
  v1::RunSpec spec = SpecTo("127.0.0.1:9000");
  spec.add_exclude_source_ips("127.0.0.2");
  EXPECT_EQ(SourcesOf(spec).WhyNone(Ips({"127.0.0.2", "::1"})),
            "offers no source IP (that the spec does not exclude)");
  EXPECT_EQ(SourcesOf(SpecTo("127.0.0.1:9000")).WhyNone(Ips({"::1"})),
            "offers no source IP of the targets' family (IPv4)");
  EXPECT_EQ(SourcesOf(SpecTo("127.0.0.1:9000")).WhyNone(DualStack()), "");
}

}  // namespace
}  // namespace churnlab::analysis
