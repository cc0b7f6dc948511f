#include "http/http_access.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proto/grpc_link.h"

namespace churnlab {
namespace {

bool HasToken(const std::string& token, const HttpRequestFacts& request, bool query_too) {
  if (BearerTokenMatches(request.authorization, token)) return true;
  return query_too && !request.query_token.empty() &&
         BearerTokenMatches(absl::StrCat("Bearer ", request.query_token), token);
}

// The Host header names this server: a page whose own name was rebound to this address (DNS
// rebinding) sends its own name.
absl::Status CheckHost(const HttpAccessRules& rules, const HttpRequestFacts& request) {
  if (request.host.empty()) {
    return absl::PermissionDeniedError("this request needs a Host header");
  }
  if (!HostNamesServer(request.host, request.local, request.tls, rules.allowed_hosts)) {
    return absl::PermissionDeniedError(
        absl::StrCat("Host '", request.host,
                     "' is not this server's address (add the name with --http-allowed-hosts)"));
  }
  return absl::OkStatus();
}

absl::Status CheckSameSite(const HttpAccessRules& rules, const HttpRequestFacts& request) {
  if (absl::Status host = CheckHost(rules, request); !host.ok()) return host;
  if (!request.has_origin) return absl::OkStatus();  // not a browser, or a same-origin GET
  const std::string want =
      absl::StrCat(request.tls ? "https://" : "http://", absl::AsciiStrToLower(request.host));
  if (absl::AsciiStrToLower(request.origin) != want) {
    return absl::PermissionDeniedError(
        absl::StrCat("cross-site request refused: Origin '", request.origin, "' is not ", want));
  }
  return absl::OkStatus();
}

}  // namespace

bool HostNamesServer(absl::string_view host, const SocketAddress& local, bool tls,
                     const std::vector<std::string>& allowed_hosts) {
  std::string lower = absl::AsciiStrToLower(host);
  absl::string_view name = lower;
  absl::string_view port_text;
  if (absl::StartsWith(name, "[")) {  // [v6] or [v6]:port
    size_t close = name.find(']');
    if (close == absl::string_view::npos) return false;
    absl::string_view rest = name.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || rest.size() == 1)) return false;
    if (!rest.empty()) port_text = rest.substr(1);
    name = name.substr(1, close - 1);
  } else if (size_t colon = name.rfind(':'); colon != absl::string_view::npos) {
    port_text = name.substr(colon + 1);
    name = name.substr(0, colon);
    if (port_text.empty()) return false;
  }
  int port = tls ? 443 : 80;
  if (!port_text.empty() && !absl::SimpleAtoi(port_text, &port)) return false;
  if (port != local.port()) return false;
  if (name == absl::AsciiStrToLower(local.IpString())) return true;
  if (name == "localhost" && local.is_loopback()) return true;
  return std::find(allowed_hosts.begin(), allowed_hosts.end(), name) != allowed_hosts.end();
}

absl::Status CheckHttpAccess(const HttpAccessRules& rules, HttpRouteKind kind,
                             const HttpRequestFacts& request) {
  const absl::Status need_token =
      absl::UnauthenticatedError("this coordinator needs its token (Authorization: Bearer)");
  switch (kind) {
    case HttpRouteKind::kPage:
      return absl::OkStatus();
    case HttpRouteKind::kRead:
    case HttpRouteKind::kEvents:
      // Without a token, the Host is what keeps a rebinding page from reading.
      if (rules.token.empty()) return CheckHost(rules, request);
      if (rules.public_read || HasToken(rules.token, request, kind == HttpRouteKind::kEvents)) {
        return absl::OkStatus();
      }
      return need_token;
    case HttpRouteKind::kMetrics:
      if (rules.token.empty() && rules.metrics_token.empty()) return CheckHost(rules, request);
      if (rules.public_read) return absl::OkStatus();
      if (rules.metrics_token.empty()) {
        return HasToken(rules.token, request, false) ? absl::OkStatus() : need_token;
      }
      // With a metrics token set, an empty coordinator token must not open /metrics.
      if (HasToken(rules.metrics_token, request, false)) return absl::OkStatus();
      if (!rules.token.empty() && HasToken(rules.token, request, false)) return absl::OkStatus();
      return absl::UnauthenticatedError("/metrics needs the metrics token (Authorization: Bearer)");
    case HttpRouteKind::kWrite:
      if (absl::Status s = CheckSameSite(rules, request); !s.ok()) return s;
      return HasToken(rules.token, request, false) ? absl::OkStatus() : need_token;
  }
  return absl::InternalError("unknown route kind");
}

}  // namespace churnlab
