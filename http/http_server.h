// The coordinator's HTTP/1.1 server: libevent's evhttp on one loop thread, so an open event stream
// or a slow client costs a socket and a few buffers, never a thread. Every request (headers and
// body) must arrive within a deadline counted from the connection's accept or its previous
// response; the number of connections is capped; TLS (and client certificates with a CA) comes
// from OpenSSL through libevent_openssl. Handlers run on the loop thread and answer there, now or
// later (Post() brings an answer from another thread); event streams are written to from the
// loop thread only, each chunk shared by reference among all the streams that send it.
#pragma once

#include <event2/event.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/net_address.h"

struct evhttp;
struct evhttp_request;
struct evhttp_connection;
struct bufferevent;
typedef struct ssl_ctx_st SSL_CTX;

namespace churnlab {

// A request as the handler sees it: copied out of libevent, so it can go to another thread.
struct HttpServerRequest {
  std::string method;                                        // "GET", "POST", "HEAD"
  std::string path;                                          // as sent, without the query
  std::string query;                                         // after '?', "" when none
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  SocketAddress local;  // the address the client connected to
  bool tls = false;

  // The first header of that (lower-case) name; "" when absent.
  std::string Header(absl::string_view name) const;
  bool HasHeader(absl::string_view name) const;
  // The query parameter's value; "" when absent.
  std::string QueryParam(absl::string_view name) const;
};

struct HttpServerResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class HttpServer {
 public:
  struct Options {
    std::string tls_cert, tls_key;  // PEM; both needed by a TLS listener
    std::string tls_ca;             // PEM; not empty = client certificates required
    absl::Duration request_deadline = absl::Seconds(10);
    absl::Duration write_timeout = absl::Seconds(10);  // a client that reads nothing that long
    size_t max_connections = 4096;
    size_t max_header_bytes = 16 * 1024;
    size_t max_body_bytes = 256 * 1024;
    size_t max_stream_backlog = 8 << 20;  // bytes unsent to one stream before it is closed
  };
  // Called on the loop thread with each complete request; it must answer with Reply(), or
  // StartStream() ... EndStream(), now or later, on the loop thread.
  using Handler = std::function<void(uint64_t request_id, HttpServerRequest request)>;

  struct Counters {
    uint64_t accepted = 0;
    uint64_t over_connection_cap = 0;  // closed at once: max_connections were open
    uint64_t request_deadline = 0;     // closed: no complete request within the deadline
    uint64_t accept_errors = 0;  // EMFILE and the like (process-wide); accepting pauses 100 ms
    uint64_t stream_backlog_closed = 0;  // streams closed: the client fell behind
    size_t open_connections = 0;
  };

  // INVALID_ARGUMENT when the TLS material does not load.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(Options options, Handler handler);
  ~HttpServer();  // Stop()s

  // Before Start(): binds `address` (port 0 picks one), with TLS or not, and returns the bound
  // address. UNAVAILABLE naming the address when it cannot bind; INVALID_ARGUMENT for a TLS
  // listener without a certificate.
  absl::StatusOr<SocketAddress> Listen(const SocketAddress& address, bool tls);
  // Before Start(): runs `fn` on the loop thread every `period`.
  void Every(absl::Duration period, std::function<void()> fn);
  void Start();
  // Closes every connection; after it returns no handler runs and posted work is dropped.
  void Stop();

  // Any thread: runs `fn` on the loop thread soon (never, after Stop()).
  void Post(std::function<void()> fn);

  // Loop thread only. A request that lost its connection is freed quietly.
  void Reply(uint64_t request_id, const HttpServerResponse& response);
  // Sends the head of a chunked response that stays open; `on_close` runs (loop thread) when the
  // client goes, falls behind by max_stream_backlog, or the server stops. False when the
  // request is already gone (`on_close` then never runs).
  bool StartStream(uint64_t request_id, const HttpServerResponse& head,
                   std::function<void()> on_close);
  void SendOnStream(uint64_t request_id, const std::shared_ptr<const std::string>& chunk);
  void EndStream(uint64_t request_id);

  Counters counters() const;

 private:
  struct Listener;
  struct Guard;
  struct Pending {
    evhttp_request* request = nullptr;
    Guard* guard = nullptr;  // null once the connection is gone
    std::function<void()> on_close;
  };

  HttpServer(Options options, Handler handler);
  static bufferevent* NewConnection(event_base* base, void* listener);
  static void OnRequest(evhttp_request* request, void* server);
  static void OnConnectionClose(evhttp_connection* connection, void* guard);
  static void OnResponseDone(evhttp_request* request, void* guard);
  static void Attach(evutil_socket_t, short, void* guard);
  void Release(Guard* guard);
  void Sweep();
  void RunPosted();
  void Finish(uint64_t request_id);
  void CloseStream(uint64_t request_id);

  Options options_;
  Handler handler_;
  event_base* base_ = nullptr;
  event* wake_ = nullptr;
  event* sweep_ = nullptr;
  SSL_CTX* ssl_ctx_ = nullptr;
  std::vector<std::unique_ptr<Listener>> listeners_;
  struct Timer;
  std::vector<std::unique_ptr<Timer>> timers_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by posted_mu_
  bool posting_closed_ = false;                // guarded by posted_mu_

  // Loop thread only.
  uint64_t next_id_ = 1;
  std::unordered_map<bufferevent*, std::unique_ptr<Guard>> guards_;  // by bufferevent
  std::unordered_map<uint64_t, Pending> pending_;
  mutable std::mutex counters_mu_;
  Counters counters_;  // guarded by counters_mu_
};

}  // namespace churnlab
