// Who may use which HTTP route of the coordinator: the bearer tokens (the coordinator's, and
// /metrics' own for Prometheus), --public-read, and the Origin/Host check that keeps other web
// sites (and DNS rebinding) from driving a browser into the write routes. Pure functions of the
// request's facts, so every rule is unit-tested without a socket.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/net_address.h"

namespace churnlab {

enum class HttpRouteKind {
  kPage,     // the dashboard's static files: public, they hold no data
  kRead,     // GET /api/agents, /api/runs, /api/runs/ID, series.csv
  kEvents,   // GET /api/events: EventSource cannot set headers, so ?token= is accepted too
  kMetrics,  // GET /metrics: the coordinator's token or the metrics token
  kWrite,    // POST /api/runs, /api/runs/ID/cancel
};

struct HttpAccessRules {
  std::string token;          // "" = none: every route is open (loopback, or --insecure)
  std::string metrics_token;  // "" = none; else /metrics also takes this one
  bool public_read = false;   // reads, events and /metrics open even with a token
  // Host names (lower case, no port) besides the address a client connected to (and
  // "localhost" on loopback) that write requests may name in Host and Origin.
  std::vector<std::string> allowed_hosts;
};

// What the rules look at, copied out of a request.
struct HttpRequestFacts {
  std::string authorization;  // the Authorization header, "" when absent
  std::string query_token;    // ?token= (honoured for kEvents only)
  std::string host;           // the Host header
  std::string origin;         // the Origin header, "" when absent
  bool has_origin = false;
  SocketAddress local;  // the address the client connected to (getsockname)
  bool tls = false;
};

// OK, or UNAUTHENTICATED (HTTP 401) when the route needs a token the request lacks, or
// PERMISSION_DENIED (HTTP 403) when a write comes from another site or names a Host that is not
// this server. The Origin/Host check comes first and holds with or without a token. Without a
// token (none for the route), reads are held to the Host check too: a page whose name was
// rebound to this address (DNS rebinding) reads nothing.
absl::Status CheckHttpAccess(const HttpAccessRules& rules, HttpRouteKind kind,
                             const HttpRequestFacts& request);

// True when `host` (a Host header value, "name[:port]") names `local`: its IP (IPv6 in
// brackets), "localhost" when `local` is loopback, or one of `allowed_hosts`; with `local`'s
// port (or no port when that is the scheme's default).
bool HostNamesServer(absl::string_view host, const SocketAddress& local, bool tls,
                     const std::vector<std::string>& allowed_hosts);

}  // namespace churnlab
