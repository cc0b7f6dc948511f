#include "target/target_worker.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/tls_io.h"

namespace churnlab {
namespace {

constexpr uint64_t kListenerTag = uint64_t{1} << 63;
constexpr uint64_t kWakeTag = uint64_t{1} << 62;
constexpr int kMaxEvents = 512;
// A client that sends more than this without waiting for answers is cut off.
constexpr size_t kMaxBufferedInput = 64 * 1024;

uint64_t ConnTag(int fd, uint32_t serial) {
  return (uint64_t{serial} << 32) | static_cast<uint32_t>(fd);
}

}  // namespace

TargetWorker::TargetWorker(const TargetParams& params, SSL_CTX* tls, Shared& shared,
                           OsSysCalls& sys, Clock& clock)
    : params_(params),
      tls_(tls),
      shared_(shared),
      sys_(sys),
      clock_(clock),
      rng_(std::random_device{}()),
      scratch_(16 * 1024) {
  // Connections are indexed by fd, so the fd limit bounds the table; reserving it (untouched
  // pages cost nothing) keeps the growth from doubling the memory a held connection costs.
  rlimit fds{};
  if (getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur != RLIM_INFINITY) {
    conns_.reserve(std::min<rlim_t>(fds.rlim_cur, 1 << 22));
  }
  responses_[0] = HttpResponse(/*close=*/false);
  responses_[1] = HttpResponse(/*close=*/true);
  if (params.accept_rate > 0) {
    accept_interval_ = static_cast<int64_t>(1e9 * params.threads / params.accept_rate);
  }
}

TargetWorker::~TargetWorker() {
  for (size_t fd = 0; fd < conns_.size(); ++fd) {
    if (conns_[fd].ssl != nullptr) TlsFree(conns_[fd].ssl, /*notify=*/false);
    if (conns_[fd].serial != 0) sys_.Close(static_cast<int>(fd));
  }
  for (int fd : leaked_fds_) sys_.Close(fd);
  for (int fd : listeners_) sys_.Close(fd);
  if (wake_fd_ >= 0) sys_.Close(wake_fd_);
  if (epoll_fd_ >= 0) sys_.Close(epoll_fd_);
}

absl::Status TargetWorker::Listen(std::vector<SocketAddress>& addresses) {
  SysCallResult ep = sys_.EpollCreate();
  if (!ep.ok()) return absl::ErrnoToStatus(ep.errno_, "epoll_create1");
  epoll_fd_ = static_cast<int>(ep.rc);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return absl::ErrnoToStatus(errno, "eventfd");
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.u64 = kWakeTag;
  sys_.EpollCtl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake);

  for (size_t i = 0; i < addresses.size(); ++i) {
    SocketAddress& address = addresses[i];
    auto fail = [&](const char* call, int err) {
      return absl::ErrnoToStatus(err, absl::StrCat("listen on ", address.ToString(), ": ", call));
    };
    SysCallResult s = sys_.Socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!s.ok()) return fail("socket", s.errno_);
    int fd = static_cast<int>(s.rc);
    listeners_.push_back(fd);
    int one = 1;
    sys_.SetSockOpt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (SysCallResult r = sys_.SetSockOpt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        !r.ok()) {
      return fail("SO_REUSEPORT", r.errno_);
    }
    if (SysCallResult r = sys_.Bind(fd, address.sockaddr_ptr(), address.length()); !r.ok()) {
      return fail("bind", r.errno_);
    }
    if (SysCallResult r = sys_.Listen(fd, params_.backlog); !r.ok())
      return fail("listen", r.errno_);
    if (address.port() == 0) {
      sockaddr_storage bound{};
      socklen_t len = sizeof(bound);
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      address.set_port(
          SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&bound), len)->port());
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenerTag | i;
    sys_.EpollCtl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
  return absl::OkStatus();
}

void TargetWorker::Wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void TargetWorker::Run() {
  std::vector<epoll_event> events(kMaxEvents);
  while (true) {
    int64_t now = clock_.NowNanos();
    RunDueTimers(now);
    if (!listeners_armed_ && now >= next_accept_) SetListenersArmed(true);
    SysCallResult n = sys_.EpollWait(epoll_fd_, events.data(), kMaxEvents, WaitNanos(now));
    for (int64_t i = 0; i < n.rc; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) return;
      if (tag & kListenerTag) {
        OnListenerReady(clock_.NowNanos());
        continue;
      }
      int fd = static_cast<int>(static_cast<uint32_t>(tag));
      if (static_cast<size_t>(fd) >= conns_.size() || conns_[fd].serial != tag >> 32) continue;
      uint32_t ev = events[i].events;
      if ((ev & EPOLLOUT) && conns_[fd].want_write) {
        if (conns_[fd].handshaking) {
          OnReadable(fd);  // the handshake waited to write
          continue;
        }
        Flush(fd);
        ProcessInput(fd);  // requests that queued up behind the response
      }
      if (conns_[fd].serial == tag >> 32 && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) {
        OnReadable(fd);
      }
    }
  }
}

void TargetWorker::OnListenerReady(int64_t now) {
  for (int listener : listeners_) {
    while (true) {
      if (accept_interval_ > 0 && now < next_accept_) {
        // Accepting slowly: leave the rest in the backlog until the next accept is due.
        SetListenersArmed(false);
        return;
      }
      SysCallResult a = sys_.Accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (!a.ok()) {
        if (a.errno_ != EAGAIN) errors_.Add();
        break;
      }
      int fd = static_cast<int>(a.rc);
      accepted_.Add();
      if (accept_interval_ > 0) next_accept_ = std::max(next_accept_, now) + accept_interval_;
      if (static_cast<size_t>(fd) >= conns_.size()) conns_.resize(fd + 1024);
      Conn& c = conns_[fd];
      c = Conn{};
      c.serial = next_serial_++;
      if (next_serial_ >= (1u << 30)) next_serial_ = 1;
      if (tls_ != nullptr) {
        c.ssl = SSL_new(tls_);
        if (c.ssl == nullptr || SSL_set_fd(c.ssl, fd) != 1) {
          tls_failed_.Add();
          CloseConn(fd);
          continue;
        }
        SSL_set_accept_state(c.ssl);
        c.handshaking = true;
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = ConnTag(fd, c.serial);
      sys_.EpollCtl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    }
  }
}

void TargetWorker::SetListenersArmed(bool armed) {
  if (listeners_armed_ == armed) return;
  listeners_armed_ = armed;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    epoll_event ev{};
    ev.events = armed ? uint32_t{EPOLLIN} : 0u;
    ev.data.u64 = kListenerTag | i;
    sys_.EpollCtl(epoll_fd_, EPOLL_CTL_MOD, listeners_[i], &ev);
  }
}

void TargetWorker::OnReadable(int fd) {
  Conn& c = conns_[fd];
  if (c.handshaking && !Handshake(fd)) return;
  // TLS keeps records it decrypted where epoll cannot see them: read until it wants more.
  do {
    SysCallResult r = ReceiveBytes(c, fd);
    if (!r.ok()) {
      if (r.errno_ == EAGAIN) break;
      (r.errno_ == ECONNRESET ? reset_ : errors_).Add();
      return CloseConn(fd);
    }
    if (r.rc == 0) return OnPeerClosed(fd);
    if (c.in.size() - c.in_pos + r.rc > kMaxBufferedInput) {
      errors_.Add();
      return CloseConn(fd);
    }
    c.in.append(scratch_.data(), r.rc);
  } while (c.ssl != nullptr);
  ProcessInput(fd);
}

bool TargetWorker::Handshake(int fd) {
  Conn& c = conns_[fd];
  int rc = SSL_do_handshake(c.ssl);
  int error = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c.ssl, rc);
  bool wants_write = error == SSL_ERROR_WANT_WRITE;
  if (wants_write != c.want_write) {
    SetInterest(fd, EPOLLIN | EPOLLRDHUP | (wants_write ? uint32_t{EPOLLOUT} : 0u));
    c.want_write = wants_write;
  }
  if (rc == 1) {
    c.handshaking = false;
    (SSL_session_reused(c.ssl) == 1 ? tls_resumed_ : tls_full_).Add();
    return true;
  }
  if (error != SSL_ERROR_WANT_READ && !wants_write) CloseConn(fd);  // counted failed there
  return false;
}

SysCallResult TargetWorker::ReceiveBytes(Conn& c, int fd) {
  if (c.ssl != nullptr) return TlsRead(c.ssl, scratch_.data(), scratch_.size());
  return sys_.Recv(fd, scratch_.data(), scratch_.size());
}

SysCallResult TargetWorker::SendBytes(Conn& c, int fd) {
  const char* data = c.out.data() + c.out_pos;
  size_t len = c.out.size() - c.out_pos;
  return c.ssl != nullptr ? TlsWrite(c.ssl, data, len) : sys_.Send(fd, data, len);
}

// Answers the complete requests in the input buffer, one at a time: the next waits until the
// previous answer is written (its delay may still be running).
void TargetWorker::ProcessInput(int fd) {
  Conn& c = conns_[fd];
  if (c.serial == 0) return;
  while (!c.pending && c.in_pos < c.in.size()) {
    size_t available = c.in.size() - c.in_pos;
    if (!SpeaksHttp(params_.protocol)) {
      if (available < kCounterMessageSize) break;
      c.in_pos += kCounterMessageSize;
      Answer(fd, /*asked_to_close=*/false);
      continue;
    }
    size_t used = 0;
    HttpParser::Result result = c.http.Feed(c.in.data() + c.in_pos, available, &used);
    c.in_pos += used;
    if (result == HttpParser::Result::kError) {
      errors_.Add();
      return CloseConn(fd);
    }
    if (result == HttpParser::Result::kNeedMore) break;
    bool close = c.http.connection_close();
    c.http.Reset(HttpParser::Kind::kRequest);
    Answer(fd, close);
  }
  if (c.in_pos == c.in.size()) {
    c.in.clear();
    c.in_pos = 0;
  }
}

void TargetWorker::Answer(int fd, bool asked_to_close) {
  Conn& c = conns_[fd];
  c.pending = true;
  c.close_after = params_.close_mode == CloseMode::kServer ||
                  (params_.close_mode == CloseMode::kClient && asked_to_close);
  if (params_.delay.max <= absl::ZeroDuration()) return Respond(fd);
  std::uniform_int_distribution<int64_t> pick(absl::ToInt64Nanoseconds(params_.delay.min),
                                              absl::ToInt64Nanoseconds(params_.delay.max));
  timers_.push(Timer{clock_.NowNanos() + pick(rng_), fd, c.serial});
}

void TargetWorker::Respond(int fd) {
  Conn& c = conns_[fd];
  if (!SpeaksHttp(params_.protocol)) {
    char value[kCounterMessageSize];
    EncodeCounter(shared_.counter.fetch_add(1, std::memory_order_relaxed) + 1, value);
    c.out.append(value, kCounterMessageSize);
  } else {
    c.out.append(responses_[c.close_after ? 1 : 0]);
  }
  Flush(fd);
}

void TargetWorker::Flush(int fd) {
  Conn& c = conns_[fd];
  SysCallResult r = SendBytes(c, fd);
  if (!r.ok() && r.errno_ != EAGAIN) {
    (r.errno_ == ECONNRESET || r.errno_ == EPIPE ? reset_ : errors_).Add();
    return CloseConn(fd);
  }
  if (r.ok()) c.out_pos += r.rc;
  if (c.out_pos < c.out.size()) {
    if (!c.want_write) SetInterest(fd, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
    c.want_write = true;
    return;
  }
  if (c.want_write) SetInterest(fd, EPOLLIN | EPOLLRDHUP);
  c.want_write = false;
  c.out.clear();
  c.out_pos = 0;
  c.pending = false;
  answered_.Add();
  if (c.close_after) {
    closed_by_server_.Add();
    CloseConn(fd, /*notify=*/true);
  }
}

void TargetWorker::OnPeerClosed(int fd) {
  closed_by_peer_.Add();
  if (params_.close_mode != CloseMode::kNever) return CloseConn(fd);
  if (shared_.leaked.fetch_add(1) >= params_.max_leaked) {
    shared_.leaked.fetch_sub(1);
    leak_cap_closes_.Add();
    return CloseConn(fd);
  }
  // Keep the socket, unwatched, in CLOSE_WAIT until the target exits.
  sys_.EpollCtl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  Forget(fd, /*notify=*/false);
  leaked_fds_.push_back(fd);
  leaked_.Add();
}

void TargetWorker::CloseConn(int fd, bool notify) {
  Forget(fd, notify);
  sys_.Close(fd);
}

void TargetWorker::Forget(int fd, bool notify) {
  Conn& c = conns_[fd];
  if (c.ssl != nullptr) {
    if (c.handshaking) tls_failed_.Add();  // cut off before its handshake was done
    TlsFree(c.ssl, notify);
  }
  c = Conn{};
}

void TargetWorker::RunDueTimers(int64_t now) {
  while (!timers_.empty() && timers_.top().due <= now) {
    Timer t = timers_.top();
    timers_.pop();
    if (conns_[t.fd].serial != t.serial) continue;  // the connection ended meanwhile
    Respond(t.fd);
    ProcessInput(t.fd);
  }
}

int64_t TargetWorker::WaitNanos(int64_t now) const {
  int64_t wait = -1;
  if (!timers_.empty()) wait = std::max<int64_t>(0, timers_.top().due - now);
  if (!listeners_armed_) {
    int64_t until_accept = std::max<int64_t>(0, next_accept_ - now);
    wait = wait < 0 ? until_accept : std::min(wait, until_accept);
  }
  return wait;
}

void TargetWorker::SetInterest(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = ConnTag(fd, conns_[fd].serial);
  sys_.EpollCtl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
}

void TargetWorker::AddTo(TargetCounters* out) const {
  out->accepted += accepted_.Load();
  out->answered += answered_.Load();
  out->closed_by_peer += closed_by_peer_.Load();
  out->closed_by_server += closed_by_server_.Load();
  out->reset += reset_.Load();
  out->errors += errors_.Load();
  out->leaked += leaked_.Load();
  out->leak_cap_closes += leak_cap_closes_.Load();
  out->tls_full += tls_full_.Load();
  out->tls_resumed += tls_resumed_.Load();
  out->tls_failed += tls_failed_.Load();
}

}  // namespace churnlab
