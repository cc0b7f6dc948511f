#include "host/local_prefixes.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "host/proc_file.h"

namespace churnlab {
namespace {

constexpr uint32_t kRtfLocal = 0x80000000;  // include/uapi/linux/ipv6_route.h

// "fd000007000000000000000000000000" -> "fd00:0007:0000:...:0000".
std::string GroupedHex(absl::string_view hex) {
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 4) absl::StrAppend(&out, i ? ":" : "", hex.substr(i, 4));
  return out;
}

}  // namespace

std::vector<Cidr> ParseLocalIpv6Prefixes(absl::string_view text) {
  std::vector<Cidr> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    // dst dst_len src src_len next_hop metric refcnt use flags device
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    uint32_t length = 0;
    uint32_t flags = 0;
    if (f.size() < 10 || f[0].size() != 32 || !absl::SimpleHexAtoi(f[1], &length) ||
        !absl::SimpleHexAtoi(f[8], &flags)) {
      continue;
    }
    if (!(flags & kRtfLocal) || length >= 128) continue;
    absl::StatusOr<Cidr> prefix = Cidr::Parse(absl::StrCat(GroupedHex(f[0]), "/", length));
    if (prefix.ok()) out.push_back(*prefix);
  }
  return out;
}

std::vector<Cidr> LocalIpv6Prefixes() {
  return ParseLocalIpv6Prefixes(ReadProcFile("/proc/net/ipv6_route"));
}

}  // namespace churnlab
