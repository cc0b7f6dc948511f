#include "analysis/hold_plan.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace churnlab::analysis {
namespace {

// What more source IPs do for `in.hold`: how many it needs at these ports and destinations, and
// where they are no lever (bind-any takes every address's port at once; fds or memory binding
// before the four-tuples; bind mode none, which leaves the source to the route).
std::string SourcesSentence(const PlanInputs& in, const v1::HoldPlan& h) {
  if (in.bind == BindMode::kBindAny) {
    return "More source IPs do not raise the four-tuples here: bind-any takes each port on "
           "every address at once.";
  }
  std::string out = absl::StrFormat("At these ports and destinations %d needs %d source IP(s)",
                                    in.hold, h.sources_needed());
  if (in.hold > h.capacity() && h.limiter() != "four-tuples") {
    absl::StrAppend(&out, ", but ", h.limiter(),
                    " binds before the four-tuples: more source IPs alone do not make it fit");
  } else if (in.bind == BindMode::kNone && h.sources_needed() > 1) {
    absl::StrAppend(&out,
                    "; bind mode none leaves the source address to the route, so bind them "
                    "(bind mode no-port)");
  }
  return out + ".";
}

}  // namespace

v1::HoldPlan PlanHold(const PlanInputs& in, const SourceFacts& facts, uint32_t sources) {
  v1::HoldPlan h;
  h.set_connections(in.hold);
  const uint64_t per_source = facts.ports * facts.destinations;
  h.set_tuples(per_source * sources);
  h.set_fds_per_connection(in.same_host ? 2 : 1);
  if (in.file_max) h.set_fd_bound(*in.file_max / h.fds_per_connection());
  h.set_bytes_per_connection(kKernelBytesPerEnd * (in.same_host ? 2 : 1) + kUserBytesPerConnection);
  if (in.memory_bytes) {
    h.set_memory_bound(static_cast<uint64_t>(*in.memory_bytes / h.bytes_per_connection()));
  }
  h.set_capacity(h.tuples());
  h.set_limiter("four-tuples");
  for (auto [bound, name] : {std::pair<uint64_t, const char*>{h.fd_bound(), "fs.file-max"},
                             {h.memory_bound(), "memory"}}) {
    if (bound > 0 && bound < h.capacity()) {
      h.set_capacity(bound);
      h.set_limiter(name);
    }
  }
  h.set_sources_needed(per_source > 0 ? (in.hold + per_source - 1) / per_source : 0);
  std::string bounds = absl::StrFormat(
      "four-tuples %d (%d ports x %d destination(s) x %d source "
      "IP(s))",
      h.tuples(), facts.ports, facts.destinations, sources);
  if (h.fd_bound() > 0) {
    absl::StrAppendFormat(&bounds, ", fs.file-max %d (%d fd(s) a connection)", h.fd_bound(),
                          h.fds_per_connection());
  }
  if (h.memory_bound() > 0) {
    absl::StrAppendFormat(&bounds, ", memory %d (about %.0f B a connection%s)", h.memory_bound(),
                          h.bytes_per_connection(), in.same_host ? ", both ends" : "");
  }
  h.set_summary(absl::StrFormat(
      "This host can hold about %d connections at once; %s binds first (%s). %d at once %s. %s",
      h.capacity(), h.limiter(), bounds, in.hold, in.hold <= h.capacity() ? "fit" : "do not fit",
      SourcesSentence(in, h)));
  return h;
}

}  // namespace churnlab::analysis
