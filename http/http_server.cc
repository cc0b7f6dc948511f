#include "http/http_server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "http/http_tls.h"

namespace churnlab {
namespace {

// On every response: no site may frame the page (clickjacking), no browser may sniff a type.
void AddSafetyHeaders(evkeyvalq* out) {
  evhttp_add_header(out, "Content-Security-Policy", "frame-ancestors 'none'");
  evhttp_add_header(out, "X-Frame-Options", "DENY");
  evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
}

constexpr timeval kSweepEvery = {0, 200 * 1000};
constexpr timeval kAcceptPause = {0, 100 * 1000};
std::atomic<uint64_t> g_accept_errors{0};     // process-wide: the callback has no server
constexpr size_t kReadHighWater = 64 * 1024;  // above max_header_bytes: evhttp refuses first

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The request line and the header lines as the client sent them ("Key: value\r\n").
size_t HeaderBytes(evhttp_request* req, const std::string& method) {
  size_t bytes = method.size() + std::strlen(evhttp_request_get_uri(req)) + 12;  // " HTTP/1.1\r\n"
  evkeyvalq* headers = evhttp_request_get_input_headers(req);
  for (evkeyval* h = headers->tqh_first; h != nullptr; h = h->next.tqe_next) {
    bytes += std::strlen(h->key) + std::strlen(h->value) + 4;
  }
  return bytes;
}

}  // namespace

struct HttpServer::Listener {
  HttpServer* server = nullptr;
  evhttp* http = nullptr;
  evconnlistener* listener = nullptr;
  event* resume = nullptr;
  bool tls = false;
};

// One per connection, owned by guards_ until the connection closes: the request deadline and the
// link from libevent's connection back to the request being answered.
struct HttpServer::Guard {
  HttpServer* server = nullptr;
  bufferevent* bev = nullptr;  // the connection's, one reference of it ours
  bool tls = false;
  int64_t deadline_ms = 0;  // 0: none (a request is being answered or streamed)
  uint64_t request_id = 0;  // the request in the handler's hands, 0 when none
  event* attach = nullptr;  // runs Attach() once, just after the accept
};

struct HttpServer::Timer {
  event* ev = nullptr;
  std::function<void()> fn;
};

HttpServer::HttpServer(Options options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(Options options, Handler handler) {
  static std::once_flag threads_once;
  std::call_once(threads_once, [] { evthread_use_pthreads(); });
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(options), std::move(handler)));
  if (!server->options_.tls_cert.empty()) {
    absl::StatusOr<SSL_CTX*> ctx = MakeSslContext(
        server->options_.tls_cert, server->options_.tls_key, server->options_.tls_ca);
    if (!ctx.ok()) return ctx.status();
    server->ssl_ctx_ = *ctx;
  }
  server->base_ = event_base_new();
  if (server->base_ == nullptr) return absl::InternalError("libevent: cannot make an event base");
  server->wake_ = event_new(
      server->base_, -1, EV_PERSIST,
      [](evutil_socket_t, short, void* s) { static_cast<HttpServer*>(s)->RunPosted(); },
      server.get());
  server->sweep_ = event_new(
      server->base_, -1, EV_PERSIST,
      [](evutil_socket_t, short, void* s) { static_cast<HttpServer*>(s)->Sweep(); }, server.get());
  event_add(server->wake_, nullptr);
  event_add(server->sweep_, &kSweepEvery);
  return server;
}

HttpServer::~HttpServer() {
  Stop();  // closes the listeners and connections
  listeners_.clear();
  for (auto& t : timers_) event_free(t->ev);
  timers_.clear();
  if (wake_ != nullptr) event_free(wake_);
  if (sweep_ != nullptr) event_free(sweep_);
  if (base_ != nullptr) event_base_free(base_);
  if (ssl_ctx_ != nullptr) SSL_CTX_free(ssl_ctx_);
}

absl::StatusOr<SocketAddress> HttpServer::Listen(const SocketAddress& address, bool tls) {
  if (tls && ssl_ctx_ == nullptr) {
    return absl::InvalidArgumentError("a TLS listener needs --tls-cert and --tls-key");
  }
  auto l = std::make_unique<Listener>();
  l->server = this;
  l->tls = tls;
  l->listener = evconnlistener_new_bind(
      base_, nullptr, nullptr, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
      1024, address.sockaddr_ptr(), static_cast<int>(address.length()));
  if (l->listener == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for HTTP on ", address.ToString(), ": ", strerror(errno)));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(evconnlistener_get_fd(l->listener), reinterpret_cast<sockaddr*>(&bound), &len);
  absl::StatusOr<SocketAddress> out =
      SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&bound), len);
  l->http = evhttp_new(base_);
  evhttp_set_bevcb(l->http, &HttpServer::NewConnection, l.get());
  evhttp_set_gencb(l->http, &HttpServer::OnRequest, this);
  evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
  // Headers over max_header_bytes are answered 431 (OnRequest); libevent's own cap, twice that,
  // bounds what is read at all (past it, libevent answers 400 and closes).
  evhttp_set_max_headers_size(l->http, static_cast<ev_ssize_t>(2 * options_.max_header_bytes));
  evhttp_set_max_body_size(l->http, static_cast<ev_ssize_t>(options_.max_body_bytes));
  // A body over the limit is read and dropped before the 413 goes out: closing with it unread
  // would send RST, and the client could lose the 413 to it (seen: curl got no status at all).
  // The idle timeout still bounds a client that sends slowly.
  evhttp_set_flags(l->http, EVHTTP_SERVER_LINGERING_CLOSE);
  timeval idle = absl::ToTimeval(options_.write_timeout);
  evhttp_set_timeout_tv(l->http, &idle);
  evhttp_bind_listener(l->http, l->listener);
  // Out of fds (EMFILE), accept() fails until one closes: pause instead of spinning.
  evconnlistener_set_error_cb(l->listener, [](evconnlistener* listener, void*) {
    g_accept_errors.fetch_add(1, std::memory_order_relaxed);
    evconnlistener_disable(listener);
    event_base_once(
        evconnlistener_get_base(listener), -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* p) {
          evconnlistener_enable(static_cast<evconnlistener*>(p));
        },
        listener, &kAcceptPause);
  });
  listeners_.push_back(std::move(l));
  return out;
}

void HttpServer::Every(absl::Duration period, std::function<void()> fn) {
  auto timer = std::make_unique<Timer>();
  timer->fn = std::move(fn);
  timer->ev = event_new(
      base_, -1, EV_PERSIST, [](evutil_socket_t, short, void* t) { static_cast<Timer*>(t)->fn(); },
      timer.get());
  timeval tv = absl::ToTimeval(period);
  event_add(timer->ev, &tv);
  timers_.push_back(std::move(timer));
}

void HttpServer::Start() {
  thread_ = std::thread([this] { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); });
}

void HttpServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    if (posting_closed_) return;
    posting_closed_ = true;
    posted_.clear();
  }
  stopping_ = true;
  event_base_loopbreak(base_);
  if (thread_.joinable()) thread_.join();
  // The loop has stopped: streams' owners hear of the end here, on this thread.
  std::unordered_map<uint64_t, Pending> pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) {
    if (p.on_close) p.on_close();
    // A request whose connection already went is ours to free (see Reply()).
    if (evhttp_request_get_connection(p.request) == nullptr) evhttp_request_free(p.request);
  }
  // Every connection and listener closes now, not when the server is destroyed.
  for (auto& l : listeners_) {
    if (l->resume != nullptr) event_free(l->resume);
    if (l->http != nullptr) evhttp_free(l->http);  // frees its connections and listener
    l->resume = nullptr;
    l->http = nullptr;
  }
  // A connection accepted but not yet attached had no close callback to release its guard.
  while (!guards_.empty()) Release(guards_.begin()->second.get());
}

void HttpServer::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    if (posting_closed_) return;
    posted_.push_back(std::move(fn));
  }
  event_active(wake_, EV_READ, 0);
}

void HttpServer::RunPosted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn();
}

bufferevent* HttpServer::NewConnection(event_base* base, void* arg) {
  auto* l = static_cast<Listener*>(arg);
  HttpServer* self = l->server;
  auto guard = std::make_unique<Guard>();
  guard->server = self;
  guard->tls = l->tls;
  guard->deadline_ms = NowMs() + absl::ToInt64Milliseconds(self->options_.request_deadline);
  guard->bev =
      l->tls ? bufferevent_openssl_socket_new(base, -1, SSL_new(self->ssl_ctx_),
                                              BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)
             : bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (l->tls) bufferevent_openssl_set_allow_dirty_shutdown(guard->bev, 1);
  // A client that sends while its answer streams is buffered this far, then not read.
  bufferevent_setwatermark(guard->bev, EV_READ, 0, kReadHighWater);
  // Ours until Release(): the memory stays valid even if evhttp frees it before Attach() runs.
  bufferevent_incref(guard->bev);
  guard->attach = event_new(base, -1, 0, &HttpServer::Attach, guard.get());
  event_active(guard->attach, EV_TIMEOUT, 1);
  {
    std::lock_guard<std::mutex> lock(self->counters_mu_);
    ++self->counters_.accepted;
    if (self->guards_.size() >= self->options_.max_connections) {
      ++self->counters_.over_connection_cap;
      guard->deadline_ms = 1;  // the next sweep closes it
    }
    self->counters_.open_connections = self->guards_.size() + 1;
  }
  bufferevent* bev = guard->bev;
  self->guards_.emplace(bev, std::move(guard));
  return bev;
}

void HttpServer::Attach(evutil_socket_t, short, void* arg) {
  // evhttp made its connection right after NewConnection returned, and set it as the
  // bufferevent's callback argument; a freed bufferevent has none.
  auto* guard = static_cast<Guard*>(arg);
  bufferevent_data_cb read_cb, write_cb;
  bufferevent_event_cb event_cb;
  void* connection = nullptr;
  bufferevent_getcb(guard->bev, &read_cb, &write_cb, &event_cb, &connection);
  if (connection == nullptr) return guard->server->Release(guard);
  evhttp_connection_set_closecb(static_cast<evhttp_connection*>(connection),
                                &HttpServer::OnConnectionClose, guard);
}

void HttpServer::Release(Guard* guard) {
  if (guard->request_id != 0) {
    auto it = pending_.find(guard->request_id);
    if (it != pending_.end()) it->second.guard = nullptr;
  }
  event_free(guard->attach);
  bufferevent* bev = guard->bev;
  guards_.erase(bev);  // deletes guard
  bufferevent_decref(bev);
  std::lock_guard<std::mutex> lock(counters_mu_);
  counters_.open_connections = guards_.size();
}

void HttpServer::Sweep() {
  const int64_t now = NowMs();
  std::vector<bufferevent*> expired;
  for (const auto& [key, guard] : guards_) {
    if (guard->deadline_ms != 0 && guard->deadline_ms <= now) expired.push_back(guard->bev);
  }
  if (expired.empty()) return;
  {
    std::lock_guard<std::mutex> lock(counters_mu_);
    counters_.request_deadline += expired.size();
  }
  for (bufferevent* bev : expired) {
    // evhttp takes this as a read timeout and frees the connection (and so its guard).
    bufferevent_trigger_event(bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
  }
}

void HttpServer::OnRequest(evhttp_request* req, void* arg) {
  auto* self = static_cast<HttpServer*>(arg);
  evhttp_connection* connection = evhttp_request_get_connection(req);
  bufferevent* bev = evhttp_connection_get_bufferevent(connection);
  auto found = self->guards_.find(bev);
  if (found == self->guards_.end()) {  // never happens: every connection came through here
    evhttp_send_error(req, HTTP_INTERNAL, nullptr);
    return;
  }
  Guard* guard = found->second.get();
  guard->deadline_ms = 0;  // restarted by OnResponseDone
  evhttp_request_set_on_complete_cb(req, &HttpServer::OnResponseDone, guard);
  HttpServerRequest request;
  switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:
      request.method = "GET";
      break;
    case EVHTTP_REQ_POST:
      request.method = "POST";
      break;
    case EVHTTP_REQ_HEAD:
      request.method = "HEAD";
      break;
    default:
      evhttp_send_error(req, 405, nullptr);
      return;
  }
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* path = uri != nullptr ? evhttp_uri_get_path(uri) : nullptr;
  const char* query = uri != nullptr ? evhttp_uri_get_query(uri) : nullptr;
  request.path = path != nullptr && *path != '\0' ? path : "/";
  if (query != nullptr) request.query = query;
  evkeyvalq* headers = evhttp_request_get_input_headers(req);
  for (evkeyval* h = headers->tqh_first; h != nullptr; h = h->next.tqe_next) {
    request.headers.emplace_back(absl::AsciiStrToLower(h->key), h->value);
  }
  if (HeaderBytes(req, request.method) > self->options_.max_header_bytes) {
    evhttp_send_error(req, 431,
                      absl::StrCat("Request Header Fields Too Large (over ",
                                   self->options_.max_header_bytes, " bytes)")
                          .c_str());
    return;
  }
  evbuffer* body = evhttp_request_get_input_buffer(req);
  request.body.resize(evbuffer_get_length(body));
  evbuffer_remove(body, request.body.data(), request.body.size());
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  if (getsockname(bufferevent_getfd(bev), reinterpret_cast<sockaddr*>(&local), &len) == 0) {
    absl::StatusOr<SocketAddress> a =
        SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&local), len);
    if (a.ok()) request.local = *a;
  }
  request.tls = guard->tls;

  const uint64_t id = self->next_id_++;
  guard->request_id = id;
  self->pending_[id] = Pending{req, guard, nullptr};
  evhttp_connection_set_closecb(connection, &HttpServer::OnConnectionClose, guard);
  self->handler_(id, std::move(request));
}

void HttpServer::OnResponseDone(evhttp_request*, void* arg) {
  // The connection reads its next request now: the deadline starts again.
  auto* guard = static_cast<Guard*>(arg);
  guard->request_id = 0;
  guard->deadline_ms =
      NowMs() + absl::ToInt64Milliseconds(guard->server->options_.request_deadline);
}

void HttpServer::OnConnectionClose(evhttp_connection*, void* arg) {
  auto* guard = static_cast<Guard*>(arg);
  HttpServer* self = guard->server;
  const uint64_t id = guard->request_id;
  self->Release(guard);
  if (self->stopping_ || id == 0) return;
  auto it = self->pending_.find(id);
  if (it == self->pending_.end()) return;
  // libevent has detached the request from the connection; answering it frees it. Streams end
  // here; a plain request is freed when its answer comes.
  if (it->second.on_close) self->Post([self, id] { self->CloseStream(id); });
}

void HttpServer::Reply(uint64_t request_id, const HttpServerResponse& response) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;
  evhttp_request* req = it->second.request;
  pending_.erase(it);
  if (evhttp_request_get_connection(req) == nullptr) {
    evhttp_request_free(req);
    return;
  }
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  AddSafetyHeaders(out);
  if (!response.content_type.empty()) {
    evhttp_add_header(out, "Content-Type", response.content_type.c_str());
  }
  for (const auto& [name, value] : response.headers) {
    evhttp_add_header(out, name.c_str(), value.c_str());
  }
  evbuffer* body = evbuffer_new();
  if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
    // The headers a GET would get, the length included, and no body (RFC 9110 9.3.2): bytes
    // after them would be read as the next response on a kept-alive connection.
    evhttp_add_header(out, "Content-Length", absl::StrCat(response.body.size()).c_str());
  } else {
    evbuffer_add(body, response.body.data(), response.body.size());
  }
  evhttp_send_reply(req, response.status, nullptr, body);
  evbuffer_free(body);
}

bool HttpServer::StartStream(uint64_t request_id, const HttpServerResponse& head,
                             std::function<void()> on_close) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return false;
  evhttp_request* req = it->second.request;
  if (it->second.guard == nullptr || evhttp_request_get_connection(req) == nullptr) {
    pending_.erase(it);
    evhttp_request_free(req);
    return false;
  }
  it->second.on_close = std::move(on_close);
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  AddSafetyHeaders(out);
  evhttp_add_header(out, "Content-Type", head.content_type.c_str());
  for (const auto& [name, value] : head.headers) {
    evhttp_add_header(out, name.c_str(), value.c_str());
  }
  evhttp_send_reply_start(req, head.status, nullptr);
  // A stream's client sends nothing more: no read timeout, only the write one.
  timeval write = absl::ToTimeval(options_.write_timeout);
  bufferevent_set_timeouts(it->second.guard->bev, nullptr, &write);
  return true;
}

void HttpServer::SendOnStream(uint64_t request_id,
                              const std::shared_ptr<const std::string>& chunk) {
  auto it = pending_.find(request_id);
  if (it == pending_.end() || it->second.guard == nullptr || chunk->empty()) return;
  if (evbuffer_get_length(bufferevent_get_output(it->second.guard->bev)) >
      options_.max_stream_backlog) {
    {
      std::lock_guard<std::mutex> lock(counters_mu_);
      ++counters_.stream_backlog_closed;
    }
    // As if the write had timed out: evhttp closes the connection, OnConnectionClose follows.
    bufferevent_trigger_event(it->second.guard->bev, BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT, 0);
    return;
  }
  auto* holder = new std::shared_ptr<const std::string>(chunk);
  evbuffer* buffer = evbuffer_new();
  evbuffer_add_reference(
      buffer, (*holder)->data(), (*holder)->size(),
      [](const void*, size_t, void* h) {
        delete static_cast<std::shared_ptr<const std::string>*>(h);
      },
      holder);
  evhttp_send_reply_chunk(it->second.request, buffer);
  evbuffer_free(buffer);
}

void HttpServer::CloseStream(uint64_t request_id) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;
  std::function<void()> on_close = std::move(it->second.on_close);
  evhttp_request* req = it->second.request;
  pending_.erase(it);
  if (on_close) on_close();
  evhttp_send_reply_end(req);  // detached from its connection: this frees it
}

void HttpServer::EndStream(uint64_t request_id) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;
  evhttp_request* req = it->second.request;
  pending_.erase(it);
  evhttp_send_reply_end(req);
}

HttpServer::Counters HttpServer::counters() const {
  std::lock_guard<std::mutex> lock(counters_mu_);
  Counters out = counters_;
  out.accept_errors = g_accept_errors.load(std::memory_order_relaxed);
  return out;
}

}  // namespace churnlab
