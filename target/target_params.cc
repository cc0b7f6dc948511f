#include "target/target_params.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace churnlab {

absl::string_view CloseModeName(CloseMode mode) {
  switch (mode) {
    case CloseMode::kServer:
      return "server";
    case CloseMode::kClient:
      return "client";
    case CloseMode::kNever:
      return "never";
  }
  return "unknown";
}

absl::StatusOr<CloseMode> ParseCloseMode(absl::string_view name) {
  for (CloseMode mode : {CloseMode::kServer, CloseMode::kClient, CloseMode::kNever}) {
    if (name == CloseModeName(mode)) return mode;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown close mode '", name, "' (expected server, client or never)"));
}

absl::StatusOr<DelayRange> ParseDelayRange(absl::string_view text) {
  DelayRange range;
  size_t dots = text.find("..");
  absl::string_view low = text.substr(0, dots);
  absl::string_view high = dots == absl::string_view::npos ? low : text.substr(dots + 2);
  if (!absl::ParseDuration(low, &range.min) || !absl::ParseDuration(high, &range.max)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a delay range like 10ms..1000ms or 50ms"));
  }
  if (range.min < absl::ZeroDuration() || range.min > range.max) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': need 0 <= MIN <= MAX"));
  }
  return range;
}

absl::Status ValidateTargetParams(const TargetParams& p) {
  if (p.listen.empty())
    return absl::InvalidArgumentError("listen: at least one ip:port is required");
  if (p.backlog < 1) {
    return absl::InvalidArgumentError(absl::StrCat("backlog: ", p.backlog, " must be at least 1"));
  }
  if (p.accept_rate < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("accept_rate: %g must be 0 (unlimited) or positive", p.accept_rate));
  }
  if (p.threads < 1 || p.threads > 256) {
    return absl::InvalidArgumentError(absl::StrCat("threads: ", p.threads, " is not in 1..256"));
  }
  if (p.max_leaked < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_leaked: ", p.max_leaked, " is negative"));
  }
  if (UsesTls(p.protocol) && (p.tls_cert.empty() || p.tls_key.empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_cert, tls_key: protocol ", ProtocolName(p.protocol), " needs both"));
  }
  if (!UsesTls(p.protocol) && (!p.tls_cert.empty() || !p.tls_key.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_cert, tls_key: apply to protocols tls and https, not ", ProtocolName(p.protocol)));
  }
  if (p.delay.max > absl::Minutes(10)) {
    return absl::InvalidArgumentError(absl::StrCat("delay: ", absl::FormatDuration(p.delay.max),
                                                   " is longer than the 10m maximum"));
  }
  return absl::OkStatus();
}

}  // namespace churnlab
