// The engine thread's loop and each connection's state machine (connect, exchange, close).
// Long: kept in one file on purpose, so the hot path reads top to bottom without jumping
// between files.
#include "agent/engine_worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/tls_reason.h"
#include "common/time_wait.h"
#include "common/tls_io.h"

namespace churnlab {
namespace {

constexpr int kMaxEvents = 1024;
constexpr size_t kScratchBytes = 16 * 1024;
// The loop looks at the stop flag at least this often.
constexpr int64_t kMaxWaitNanos = 50'000'000;
// How often a worker whose lease has lapsed looks whether it was extended.
constexpr int64_t kLeasePollNanos = 10'000'000;
// Starts made in one loop pass at most, and the time they may take, before the loop looks at
// ready events and deadlines again.
constexpr int kMaxStartsPerPass = 256;
constexpr int64_t kMaxStartNanosPerPass = 2'000'000;
// Closed model: the hold-back after a start that failed before its handshake, doubling while
// failures go on (EMFILE, EADDRNOTAVAIL, a refusing target), reset by a completed handshake.
constexpr int64_t kMinRetryDelayNanos = 1'000'000;
constexpr int64_t kMaxRetryDelayNanos = 100'000'000;

// This worker's share of `total`: shares differ by at most one and add up to `total`.
uint64_t ShareOf(uint64_t total, int index, int count) {
  return total / count + (static_cast<uint64_t>(index) < total % count ? 1 : 0);
}

int64_t ToNanos(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

}  // namespace

EngineWorker::EngineWorker(const EngineParams& params, std::vector<bool> free_bind, int index,
                           int count, OsSysCalls& sys, Clock& clock)
    : params_(params),
      free_bind_(std::move(free_bind)),
      index_(index),
      count_(count),
      sys_(sys),
      clock_(clock),
      pacer_(Pacer::For(params)),
      open_model_(params.rate > 0),
      capacity_(ShareOf(open_model_ ? params.max_in_flight : params.concurrency, index, count)),
      index_limit_(params.max_connections > 0 ? params.max_connections : UINT64_MAX),
      source_slots_(std::max<uint32_t>(1, params.source_ips.size())),
      connect_timeout_(ToNanos(params.connect_timeout)),
      io_timeout_(ToNanos(params.io_timeout)),
      hold_(ToNanos(params.hold)),
      late_limit_(ToNanos(params.connect_timeout)),
      targets_(params.targets),
      target_names_(params.target_names),
      outcomes_(new LiveOutcomeCounts[source_slots_]),
      status_codes_(new SingleWriterCounter[kStatusCodes]) {
  target_names_.resize(targets_.size());
  for (uint32_t t = 0; t < targets_.size(); ++t) active_.push_back(t);
}

EngineWorker::~EngineWorker() {
  for (Connection& c : slots_) {
    if (c.ssl != nullptr) TlsFree(c.ssl, /*notify=*/false);
    if (c.fd >= 0) sys_.Close(c.fd);
  }
  if (epoll_fd_ >= 0) sys_.Close(epoll_fd_);
}

absl::Status EngineWorker::Init() {
  SysCallResult ep = sys_.EpollCreate();
  if (!ep.ok()) return absl::ErrnoToStatus(ep.errno_, "epoll_create1");
  epoll_fd_ = static_cast<int>(ep.rc);
  slots_.resize(capacity_);
  free_slots_.reserve(capacity_);
  for (uint64_t i = capacity_; i > 0; --i) free_slots_.push_back(static_cast<uint32_t>(i - 1));
  if (UsesTls(params_.protocol)) {
    absl::StatusOr<std::unique_ptr<TlsClient>> tls = TlsClient::Create(params_);
    if (!tls.ok()) return tls.status();
    tls_ = std::move(*tls);
  }
  AddDestinations(0);
  if (params_.bind_mode == BindMode::kEngine) {
    auto [low, high] = PortSlice(params_.ports.low, params_.ports.high, index_, count_);
    ports_ = std::make_unique<PortPicker>(
        low, high, params_.ports.excluded, absl::ToInt64Nanoseconds(params_.ports.reuse_after),
        params_.ports.time_wait,
        clock_.NowNanos() + absl::ToInt64Nanoseconds(params_.ports.time_wait_left));
  }
  scratch_.resize(kScratchBytes);
  events_.resize(kMaxEvents);
  return absl::OkStatus();
}

void EngineWorker::AddDestinations(size_t first) {
  for (size_t t = first; t < targets_.size(); ++t) {
    same_address_.push_back(
        first_of_address_.try_emplace(targets_[t], static_cast<uint32_t>(t)).first->second);
    if (!SpeaksHttp(params_.protocol)) {
      char one[kCounterMessageSize];
      EncodeCounter(1, one);
      requests_.emplace_back(one, kCounterMessageSize);
      last_requests_.push_back(requests_.back());
    } else {
      // The Host header: the name the target was given by, else its ip:port.
      std::string host = target_names_[t].empty()
                             ? targets_[t].ToString()
                             : absl::StrCat(target_names_[t], ":", targets_[t].port());
      // Only server-fin asks the server to close; otherwise the client closes first as told.
      requests_.push_back(HttpRequest(params_.request, host, /*close=*/false));
      last_requests_.push_back(
          HttpRequest(params_.request, host, params_.close_policy == ClosePolicy::kServerFin));
    }
  }
}

void EngineWorker::Run(int64_t start_nanos, const std::atomic<bool>& stop,
                       const std::atomic<int64_t>& lease_until) {
  start_ = start_nanos;
  end_ = start_nanos + ToNanos(params_.duration);
  stop_ = &stop;
  lease_until_ = &lease_until;
  next_index_ = index_;
  // In-flight connections get the time their own timeouts and the hold allow after the end, then
  // are cut off.
  const int64_t hard_end = end_ + ToNanos(DrainBound(params_));
  int64_t last_look = start_nanos;  // when epoll_wait last returned
  bool opening = true;
  while (true) {
    int64_t now = clock_.NowNanos();
    if (stop.load(std::memory_order_relaxed) || now >= hard_end) {
      AbortAll();
      return;
    }
    if (has_changes_.load(std::memory_order_acquire)) TakeChanges();
    if (opening && (now >= end_ || next_index_ >= index_limit_)) {
      opening = false;
      if (open_model_) SkipUnmadeStarts();
    }
    if (opening) {
      StartDue(now);
    } else if (open_ == 0) {
      return;
    }
    int64_t before_wait = clock_.NowNanos();
    // Past the end with starts still open, the next pass must close them: no sleep.
    int64_t wait =
        opening && before_wait >= end_
            ? 0
            : std::min(WaitNanos(before_wait), std::max<int64_t>(0, hard_end - before_wait));
    SysCallResult n = sys_.EpollWait(epoll_fd_, events_.data(), kMaxEvents, wait);
    int64_t looked = clock_.NowNanos();
    // The loop was not looking while it worked (before_wait - last_look) and while it overslept
    // its planned wake-up (scheduling delay, SIGSTOP).
    int64_t overslept = n.rc == 0 ? std::max<int64_t>(0, looked - before_wait - wait) : 0;
    loop_lag_.Record(before_wait - last_look + overslept);
    last_look = looked;
    for (int64_t i = 0; i < n.rc; ++i) {
      uint64_t data = events_[i].data.u64;
      uint32_t slot = static_cast<uint32_t>(data);
      // An event queued for a connection that ended earlier in this batch, whose slot was reused.
      if (slots_[slot].generation != static_cast<uint32_t>(data >> 32)) continue;
      HandleEvent(slot, events_[i].events);
    }
    // A full batch may have left ready events in the kernel: look again before judging deadlines.
    if (n.rc < kMaxEvents) ExpireTimeouts(looked);
  }
}

bool EngineWorker::MayConnect(int64_t now) const {
  return now < end_ && now < lease_until_->load(std::memory_order_relaxed) &&
         !stop_->load(std::memory_order_relaxed);
}

bool EngineWorker::MayStart(int64_t now, int64_t pass_start) const {
  return MayConnect(now) && now - pass_start < kMaxStartNanosPerPass;
}

void EngineWorker::StartDue(int64_t pass_start) {
  if (open_model_) {
    StartOpenModel(pass_start);
  } else {
    StartClosedModel(pass_start);
  }
}

int64_t EngineWorker::IntendedStart(uint64_t index) const {
  int64_t after = pacer_.IntendedStartNanos(index);
  // Never, for a profile that ends at rate 0: start_ + INT64_MAX would wrap to the past and
  // start everything at once.
  if (after > std::numeric_limits<int64_t>::max() - start_) {
    return std::numeric_limits<int64_t>::max();
  }
  return start_ + after;
}

void EngineWorker::StartOpenModel(int64_t pass_start) {
  for (int made = 0; made < kMaxStartsPerPass && next_index_ < index_limit_; ++made) {
    int64_t intended = IntendedStart(next_index_);
    if (intended >= end_) return;
    // Read before every start: a connect() that searches a full port range takes milliseconds.
    int64_t now = clock_.NowNanos();
    if (intended > now || !MayStart(now, pass_start)) return;
    if (now - intended > late_limit_) {
      // The loop fell behind (slow connect() calls, a stopped process): every start due longer
      // ago than the limit is skipped and counted, in one step.
      uint64_t due = std::min(pacer_.DueBy(now - late_limit_ - start_), index_limit_);
      uint64_t skipped = due > next_index_ ? (due - next_index_ + count_ - 1) / count_ : 1;
      late_starts_.Add(skipped);
      next_index_ += skipped * count_;
      continue;
    }
    if (open_ >= capacity_) {
      missed_starts_.Add();
    } else {
      start_lateness_.Record(now - intended);
      StartConnection(next_index_, now);
    }
    next_index_ += count_;
  }
}

void EngineWorker::SkipUnmadeStarts() {
  uint64_t due = std::min(pacer_.DueBy(end_ - start_ - 1), index_limit_);
  if (due <= next_index_) return;
  uint64_t skipped = (due - next_index_ + count_ - 1) / count_;
  late_starts_.Add(skipped);
  next_index_ += skipped * count_;
}

void EngineWorker::StartClosedModel(int64_t pass_start) {
  if (pass_start < retry_at_) return;
  for (int made = 0; made < kMaxStartsPerPass && open_ < capacity_ && next_index_ < index_limit_;
       ++made) {
    int64_t now = clock_.NowNanos();
    if (!MayStart(now, pass_start)) return;
    if (params_.max_rate > 0) {
      // The agent's rate cap: connection i of the run no sooner than i / max_rate after the start.
      int64_t earliest = start_ + static_cast<int64_t>(next_index_ * 1e9 / params_.max_rate);
      if (earliest > now) {
        retry_at_ = earliest;
        return;
      }
    }
    bool started = StartConnection(next_index_, now);
    next_index_ += count_;
    if (!started) return;  // held back (HoldBackClosedModel)
  }
}

void EngineWorker::HoldBackClosedModel(int64_t now) {
  if (open_model_) return;
  retry_delay_ = std::clamp(retry_delay_ * 2, kMinRetryDelayNanos, kMaxRetryDelayNanos);
  retry_at_ = now + retry_delay_;
}

void EngineWorker::PostRateChange(uint64_t from_index, int64_t from_nanos, double rate) {
  std::lock_guard<std::mutex> lock(changes_mu_);
  changes_.push_back(RateChange{from_index, from_nanos, rate});
  has_changes_.store(true, std::memory_order_release);
}

void EngineWorker::PostDestinations(DestinationUpdate update) {
  std::lock_guard<std::mutex> lock(changes_mu_);
  destination_changes_.push_back(std::move(update));
  has_changes_.store(true, std::memory_order_release);
}

void EngineWorker::TakeChanges() {
  std::lock_guard<std::mutex> lock(changes_mu_);
  for (const RateChange& c : changes_) pacer_.ChangeRate(c.from_index, c.from_nanos, c.rate);
  changes_.clear();
  for (DestinationUpdate& u : destination_changes_) {
    const size_t first = targets_.size();
    targets_.insert(targets_.end(), u.added.begin(), u.added.end());
    target_names_.insert(target_names_.end(), u.added_names.begin(), u.added_names.end());
    AddDestinations(first);
    active_ = std::move(u.active);
  }
  destination_changes_.clear();
  has_changes_.store(false, std::memory_order_release);
}

void EngineWorker::ChoosePair(Connection& c, uint64_t global_index) const {
  // Each worker goes round every (source, destination) pair itself, from a pair of its own: its
  // indices are every count_-th of the run, and under bind mode engine its port slice must serve
  // every pair (the run's index alone would give a worker only the pairs its index falls on).
  uint64_t pair = (global_index / count_ + index_) % (uint64_t{source_slots_} * active_.size());
  c.source = static_cast<uint32_t>(pair % source_slots_);
  c.target = active_[pair / source_slots_];
}

bool EngineWorker::StartConnection(uint64_t global_index, int64_t now) {
  uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  Connection& c = slots_[slot];
  ChoosePair(c, global_index);
  c.requests_done = 0;
  c.send_offset = 0;
  c.picked = {};
  c.state = State::kConnecting;
  c.started_at = now;
  ++open_;
  in_flight_.Set(open_);
  outcomes_[c.source].Attempt();
  if (!OpenSocket(c)) {
    HoldBackClosedModel(c.started_at);
    return false;
  }
  // The last look before the SYN: opening the socket may have taken long (bind()'s port search,
  // the process stopped inside it). A start that finds the end passed is one the run had no time
  // for, counted late like those the pacer skips; a stop or a lapsed lease ends it as stopped.
  // Either way no SYN is sent; what is left is the few instructions between this read of the
  // clock and the syscall.
  int64_t checked = clock_.NowNanos();
  if (!MayConnect(checked)) {
    if (checked >= end_) {
      outcomes_[c.source].Withdraw();
      late_starts_.Add();
      Release(c);
    } else {
      Fail(c, Phase::kStopped, 0);
    }
    return false;
  }

  const SocketAddress& target = targets_[c.target];
  SysCallResult r = sys_.Connect(c.fd, target.sockaddr_ptr(), target.length());
  int64_t returned = clock_.NowNanos();
  connect_call_.Record(returned - c.started_at);
  if (!r.ok() && r.errno_ != EINPROGRESS) {
    // A four-tuple taken by a socket the engine does not know of, or by its own not yet in
    // TIME_WAIT: that port waits (Release).
    c.picked.refused = r.errno_ == EADDRNOTAVAIL;
    Fail(c, Phase::kConnect, r.errno_);
    HoldBackClosedModel(returned);
    return false;
  }
  c.picked.syn_sent = true;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = (uint64_t{c.generation} << 32) | slot;
  SysCallResult added = sys_.EpollCtl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev);
  if (!added.ok()) {
    Fail(c, Phase::kSocket, added.errno_);
    HoldBackClosedModel(returned);
    return false;
  }
  Append(connect_list_, ListId::kConnect, slot, c.started_at + connect_timeout_);
  if (r.ok()) OnConnected(c);
  return true;
}

// socket(), then the source binding the bind mode asks for. False when it failed (counted).
bool EngineWorker::OpenSocket(Connection& c) {
  SysCallResult s =
      sys_.Socket(targets_[c.target].family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (!s.ok()) {
    Fail(c, Phase::kSocket, s.errno_);
    return false;
  }
  c.fd = static_cast<int>(s.rc);
  if (tls_ != nullptr) {
    // TLS writes a flight's records, then the request, one write each: with Nagle's algorithm a
    // small write waits for the last one's ACK, which the server delays while it waits for the
    // rest (40 ms stalls after TLS 1.2's abbreviated handshake).
    int one = 1;
    SysCallResult opt = sys_.SetSockOpt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!opt.ok()) {
      Fail(c, Phase::kSocket, opt.errno_);
      return false;
    }
  }
  if (params_.bind_mode == BindMode::kNone) return true;
  if (params_.bind_mode == BindMode::kBindAny) {
    return Bind(c, SocketAddress::Any(targets_[c.target].family()));
  }
  if (params_.bind_mode == BindMode::kNoPort) {
    int one = 1;
    SysCallResult opt =
        sys_.SetSockOpt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (!opt.ok()) {
      Fail(c, Phase::kBind, opt.errno_);
      return false;
    }
  }
  const SocketAddress& source = params_.source_ips[c.source];
  if (c.source < free_bind_.size() && free_bind_[c.source]) {
    int one = 1;
    SocketOption free_bind = FreeBindOption(source.family());
    SysCallResult opt = sys_.SetSockOpt(c.fd, free_bind.level, free_bind.name, &one, sizeof(one));
    if (!opt.ok()) {
      Fail(c, Phase::kBind, opt.errno_);
      return false;
    }
  }
  if (ports_ != nullptr) return BindPickedPort(c, source);
  return Bind(c, source);
}

bool EngineWorker::BindPickedPort(Connection& c, const SocketAddress& source) {
  int one = 1;
  SysCallResult opt = sys_.SetSockOpt(c.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (!opt.ok()) {
    Fail(c, Phase::kBind, opt.errno_);
    return false;
  }
  const uint16_t port = ports_->Pick(PairOf(c), c.started_at, &c.picked.taking_over);
  if (port == 0) {
    Fail(c, Phase::kBind, EADDRNOTAVAIL);  // every port toward it in use or in TIME_WAIT
    return false;
  }
  c.picked.port = port;
  SocketAddress bound = source;
  bound.set_port(port);
  SysCallResult b = sys_.Bind(c.fd, bound.sockaddr_ptr(), bound.length());
  if (!b.ok()) {
    c.picked.refused = b.errno_ == EADDRINUSE;  // another program's bind() or listener
    Fail(c, Phase::kBind, b.errno_);
    return false;
  }
  return true;
}

bool EngineWorker::Bind(Connection& c, const SocketAddress& address) {
  SysCallResult b = sys_.Bind(c.fd, address.sockaddr_ptr(), address.length());
  if (!b.ok()) {
    Fail(c, Phase::kBind, b.errno_);
    return false;
  }
  return true;
}

void EngineWorker::HandleEvent(uint32_t slot, uint32_t events) {
  Connection& c = slots_[slot];
  switch (c.state) {
    case State::kConnecting:
      if (events & (EPOLLERR | EPOLLHUP)) {
        int err = 0;
        socklen_t len = sizeof(err);
        sys_.GetSockOpt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        c.picked.syn_sent = false;  // refused or unreachable: the socket is gone, nothing waits
        Fail(c, Phase::kConnect, err != 0 ? err : ECONNREFUSED);
        return HoldBackClosedModel(clock_.NowNanos());
      }
      if (events & EPOLLOUT) OnConnected(c);
      return;
    case State::kHandshaking:
      return ContinueHandshake(c);
    case State::kAwaitingSession:
      return OnSessionEvent(c);
    case State::kSending:
      // TLS may need to read before it can write (a key update): any event, then.
      if (c.ssl != nullptr || (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) SendRequest(c);
      return;
    case State::kReceiving:
    case State::kAwaitingFin:
      if (c.ssl != nullptr || (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) {
        ReadResponse(c);
      }
      return;
    case State::kHolding:
      if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) OnHeldEvent(c);
      return;
    case State::kFree:
      return;
  }
}

void EngineWorker::OnConnected(Connection& c) {
  int64_t now = clock_.NowNanos();
  c.picked.handshake_micros =
      static_cast<uint32_t>(std::min<int64_t>((now - c.started_at) / 1000, UINT32_MAX));
  c.picked.connected = true;

  connect_latency_.Record(now - c.started_at);
  retry_delay_ = 0;
  if (tls_ == nullptr) return StartExchanges(c);
  c.handshake_started = now;
  StartHandshake(c);
}

void EngineWorker::StartHandshake(Connection& c) {
  uint32_t pair = c.source + c.target * source_slots_;
  c.ssl = tls_->Open(c.fd, pair, target_names_[c.target], targets_[c.target]);
  if (c.ssl == nullptr) return Fail(c, Phase::kTls, kTlsHandshakeFailed);
  c.state = State::kHandshaking;
  // The TLS handshake gets an io_timeout of its own.
  Append(io_list_, ListId::kIo, SlotOf(c), c.handshake_started + io_timeout_);
  ContinueHandshake(c);
}

void EngineWorker::ContinueHandshake(Connection& c) {
  int reason = kTlsHandshakeFailed;
  switch (TlsClient::Handshake(c.ssl, &reason)) {
    case TlsClient::Step::kPending:
      return;
    case TlsClient::Step::kFailed:
      return Fail(c, Phase::kTls, reason);
    case TlsClient::Step::kDone:
      break;
  }
  tls_handshake_.Record(clock_.NowNanos() - c.handshake_started);
  outcomes_[c.source].Handshake(SSL_session_reused(c.ssl) == 1);
  Unlink(c);
  StartExchanges(c);
}

void EngineWorker::StartExchanges(Connection& c) {
  if (params_.requests_per_connection > 0) {
    c.state = State::kSending;
    return SendRequest(c);
  }
  // Connect-only. TLS 1.3 sends its session tickets after the handshake: a connection that
  // closed at once would leave none to resume with, so it waits for one (io_timeout at most).
  if (c.ssl != nullptr && tls_->resuming() && TlsClient::IsTls13(c.ssl) &&
      !TlsClient::GotSession(c.ssl)) {
    c.state = State::kAwaitingSession;
    Append(io_list_, ListId::kIo, SlotOf(c), clock_.NowNanos() + io_timeout_);
    return OnSessionEvent(c);
  }
  EndExchanges(c);
}

void EngineWorker::OnSessionEvent(Connection& c) {
  while (!TlsClient::GotSession(c.ssl)) {
    SysCallResult r = ReceiveBytes(c, scratch_.data(), scratch_.size());
    if (r.ok() && r.rc > 0) continue;  // the server spoke first (a banner): dropped
    // The read may have taken the ticket before running out of bytes.
    if (!r.ok() && r.errno_ == EAGAIN && !TlsClient::GotSession(c.ssl)) return;
    // A session, or the server closed or failed: the handshake was done all the same.
    break;
  }
  Unlink(c);
  EndExchanges(c);
}

SysCallResult EngineWorker::ReceiveBytes(Connection& c, char* buf, size_t len) {
  return c.ssl != nullptr ? TlsRead(c.ssl, buf, len) : sys_.Recv(c.fd, buf, len);
}

SysCallResult EngineWorker::SendBytes(Connection& c, const char* buf, size_t len) {
  return c.ssl != nullptr ? TlsWrite(c.ssl, buf, len) : sys_.Send(c.fd, buf, len);
}

absl::string_view EngineWorker::RequestFor(const Connection& c) const {
  bool last = c.requests_done + 1 >= params_.requests_per_connection;
  return last ? last_requests_[c.target] : requests_[c.target];
}

void EngineWorker::SendRequest(Connection& c) {
  if (c.send_offset == 0) {
    // A new exchange: its response gets a full io_timeout.
    Append(io_list_, ListId::kIo, SlotOf(c), clock_.NowNanos() + io_timeout_);
  }
  absl::string_view request = RequestFor(c);
  SysCallResult r = SendBytes(c, request.data() + c.send_offset, request.size() - c.send_offset);
  if (!r.ok()) {
    if (r.errno_ == EAGAIN) return;  // EPOLLOUT will call again
    return Fail(c, Phase::kWrite, r.errno_);
  }
  c.send_offset += static_cast<uint32_t>(r.rc);
  if (c.send_offset < request.size()) return;
  c.send_offset = 0;
  c.state = State::kReceiving;
  c.counter_received = 0;
  c.http.Reset(HttpParser::Kind::kResponse, /*head_response=*/params_.request.method == "HEAD");
}

void EngineWorker::ReadResponse(Connection& c) {
  while (c.state == State::kReceiving || c.state == State::kAwaitingFin) {
    SysCallResult r = ReceiveBytes(c, scratch_.data(), scratch_.size());
    if (!r.ok()) {
      if (r.errno_ == EAGAIN) return;
      return Fail(c, Phase::kRead, r.errno_);
    }
    if (r.rc == 0) {
      if (c.state == State::kAwaitingFin) {
        // The server closed first (its TCP FIN, not a TLS close_notify ahead of it): its side
        // keeps the TIME_WAIT.
        c.picked.peer_closed_first = c.ssl == nullptr;
        return Finish(c);
      }
      if (SpeaksHttp(params_.protocol) && c.http.CompletesAtEof() &&
          c.requests_done + 1 == params_.requests_per_connection) {
        outcomes_[c.source].Request();
        if (!CheckStatus(c)) return;
        return Finish(c);
      }
      return Fail(c, Phase::kRead, 0);
    }
    if (c.state == State::kAwaitingFin) return Fail(c, Phase::kProtocol, 0);  // bytes after the end
    size_t len = static_cast<size_t>(r.rc);
    bool complete = false;
    if (!SpeaksHttp(params_.protocol)) {
      if (c.counter_received + len > kCounterMessageSize) return Fail(c, Phase::kProtocol, 0);
      c.counter_received += static_cast<uint8_t>(len);
      complete = c.counter_received == kCounterMessageSize;
    } else {
      size_t used = 0;
      HttpParser::Result result = c.http.Feed(scratch_.data(), len, &used);
      if (result == HttpParser::Result::kError || used != len) return Fail(c, Phase::kProtocol, 0);
      complete = result == HttpParser::Result::kComplete;
    }
    if (complete) OnResponse(c);
  }
}

bool EngineWorker::CheckStatus(Connection& c) {
  int code = c.http.status_code();
  if (code >= kMinStatusCode && code < kMinStatusCode + kStatusCodes) {
    status_codes_[code - kMinStatusCode].Add();
  }
  if (params_.expect_status == 0 || code == params_.expect_status) return true;
  Fail(c, Phase::kStatus, code / 100);
  return false;
}

void EngineWorker::OnResponse(Connection& c) {
  outcomes_[c.source].Request();
  if (SpeaksHttp(params_.protocol) && !CheckStatus(c)) return;
  if (++c.requests_done < params_.requests_per_connection) {
    c.state = State::kSending;
    return SendRequest(c);
  }
  EndExchanges(c);
}

void EngineWorker::EndExchanges(Connection& c) {
  if (hold_ > 0) return StartHold(c);
  CloseByPolicy(c);
}

void EngineWorker::CloseByPolicy(Connection& c) {
  switch (params_.close_policy) {
    case ClosePolicy::kClientFin:
      if (c.ssl != nullptr) TlsFree(std::exchange(c.ssl, nullptr), /*notify=*/true);
      return Finish(c);
    case ClosePolicy::kRst: {
      linger reset{1, 0};
      c.picked.reset = sys_.SetSockOpt(c.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)).ok();
      return Finish(c);
    }
    case ClosePolicy::kServerFin:
      c.state = State::kAwaitingFin;
      Append(io_list_, ListId::kIo, SlotOf(c), clock_.NowNanos() + io_timeout_);
      return;  // ReadResponse's loop goes on to look for the FIN
  }
}

void EngineWorker::StartHold(Connection& c) {
  c.state = State::kHolding;
  Append(hold_list_, ListId::kHold, SlotOf(c), clock_.NowNanos() + hold_);
  held_.Set(++holding_);
  // Edge-triggered: a FIN that came with the response raised its edge already, so look now.
  OnHeldEvent(c);
}

void EngineWorker::OnHeldEvent(Connection& c) {
  SysCallResult r = ReceiveBytes(c, scratch_.data(), scratch_.size());
  if (!r.ok()) {
    if (r.errno_ == EAGAIN) return;
    return Fail(c, Phase::kRead, r.errno_);
  }
  // The server closed a held connection (EOF), or sent bytes nobody asked for.
  Fail(c, r.rc == 0 ? Phase::kRead : Phase::kProtocol, 0);
}

void EngineWorker::Finish(Connection& c) {
  outcomes_[c.source].Succeed();
  connection_latency_.Record(clock_.NowNanos() - c.started_at);
  Release(c);
}

void EngineWorker::Fail(Connection& c, Phase phase, int err) {
  outcomes_[c.source].Fail(phase, err);
  Release(c);
}

PortPicker::Reuse EngineWorker::ReuseOf(Connection& c, int64_t* soon) {
  using Reuse = PortPicker::Reuse;
  constexpr int64_t kMilli = 1'000'000;
  // After the server's FIN, this side's LAST_ACK lasts about a round trip: four of the
  // handshake's, within 1 ms..1 s.
  *soon = std::clamp<int64_t>(4'000LL * c.picked.handshake_micros, kMilli, 1'000 * kMilli);
  if (!c.picked.syn_sent || c.picked.reset) return Reuse::kNow;
  if (c.picked.peer_closed_first) return Reuse::kSoon;
  // Our FIN first (or a timeout, an error after the SYN): a TIME_WAIT here. The kernel lets a
  // connect() from a socket bound to the port take that four-tuple over once it is a TIME_WAIT
  // (our FIN acknowledged), whatever tcp_tw_reuse says, when the connection had TCP timestamps
  // (tcp_twsk_unique: PAWS keeps its old segments out; TcpExtTWRecycled counts it). Without them
  // the port waits the TIME_WAIT out.
  if (!c.picked.connected) return Reuse::kAfterTimeWait;
  const int64_t wait = TakeoverWait(c);
  if (wait == 0) return Reuse::kAfterTimeWait;
  *soon = wait;
  return Reuse::kTakeOver;
}

int64_t EngineWorker::TakeoverWait(Connection& c) {
  // Whether a destination's connections have TCP timestamps is asked on one close in
  // kAskEvery (a syscall of about 1.4 us), and how long its TIME_WAITs wait with it.
  constexpr uint32_t kAskEvery = 32;
  PortPicker::Takeover& t = ports_->TakeoverOf(PairOf(c));
  if (t.until_ask > 0) {
    --t.until_ask;
    return t.wait;
  }
  t.until_ask = kAskEvery - 1;
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (!sys_.GetSockOpt(c.fd, IPPROTO_TCP, TCP_INFO, &info, &len).ok() ||
      len < offsetof(tcp_info, tcpi_rttvar) || !(info.tcpi_options & TCPI_OPT_TIMESTAMPS)) {
    t.wait = 0;
    return 0;
  }
  // The FIN close() sends is acknowledged a round trip later, or after a retransmission timeout
  // if it is lost: the port waits the longer of four round trips and one timeout.
  const int64_t wait_us = std::max<int64_t>(4LL * info.tcpi_rtt, info.tcpi_rto);
  t.wait =
      std::clamp<int64_t>(wait_us * 1'000, 1'000'000, static_cast<int64_t>(kTimeWaitSeconds * 1e9));
  return t.wait;
}

void EngineWorker::Release(Connection& c) {
  Unlink(c);
  if (c.picked.port != 0) {
    const int64_t now = clock_.NowNanos();
    if (c.picked.refused && c.picked.taking_over) {
      // The TIME_WAIT it meant to take over was none yet (our FIN unacknowledged: the socket
      // still in FIN_WAIT1; or a connection without timestamps): the port comes back in a
      // second, and is set aside if refused again; the next close asks TCP_INFO again.
      ports_->Release(PairOf(c), c.picked.port, now, PortPicker::Reuse::kSoon, 1'000'000'000);
      ports_->TakeoverOf(PairOf(c)).until_ask = 0;
    } else if (c.picked.refused) {
      ports_->SetAside(PairOf(c), c.picked.port, now);
    } else {
      int64_t soon = 0;
      const PortPicker::Reuse reuse = ReuseOf(c, &soon);
      ports_->Release(PairOf(c), c.picked.port, now, reuse, soon);
    }
    c.picked.port = 0;
  }
  if (c.ssl != nullptr) TlsFree(std::exchange(c.ssl, nullptr), /*notify=*/false);
  // close() also takes the fd out of the epoll set.
  if (c.fd >= 0) sys_.Close(c.fd);
  c.fd = -1;
  if (c.state == State::kHolding) held_.Set(--holding_);
  c.state = State::kFree;
  ++c.generation;
  free_slots_.push_back(SlotOf(c));
  --open_;
  in_flight_.Set(open_);
}

void EngineWorker::AbortAll() {
  for (Connection& c : slots_) {
    // A held connection did all it was asked: the run's end closes it as the policy says.
    if (c.state == State::kHolding) {
      CloseByPolicy(c);
    } else if (c.state != State::kFree) {
      Fail(c, Phase::kStopped, 0);
    }
  }
}

void EngineWorker::Append(List& list, ListId id, uint32_t slot, int64_t deadline) {
  Connection& c = slots_[slot];
  Unlink(c);
  c.list = id;
  c.deadline = deadline;
  c.prev = list.tail;
  c.next = kNil;
  if (list.tail != kNil)
    slots_[list.tail].next = slot;
  else
    list.head = slot;
  list.tail = slot;
}

void EngineWorker::Unlink(Connection& c) {
  if (c.list == ListId::kNone) return;
  List& list = c.list == ListId::kConnect ? connect_list_
               : c.list == ListId::kIo    ? io_list_
                                          : hold_list_;
  if (c.prev != kNil)
    slots_[c.prev].next = c.next;
  else
    list.head = c.next;
  if (c.next != kNil)
    slots_[c.next].prev = c.prev;
  else
    list.tail = c.prev;
  c.prev = c.next = kNil;
  c.list = ListId::kNone;
}

void EngineWorker::ExpireTimeouts(int64_t looked) {
  while (connect_list_.head != kNil && slots_[connect_list_.head].deadline <= looked) {
    Fail(slots_[connect_list_.head], Phase::kConnectTimeout, ETIMEDOUT);
  }
  while (io_list_.head != kNil && slots_[io_list_.head].deadline <= looked) {
    Connection& c = slots_[io_list_.head];
    if (c.state == State::kHandshaking) {
      Fail(c, Phase::kTls, kTlsTimeout);
    } else if (c.state == State::kAwaitingSession) {
      // No ticket came: the connection did what it was for all the same.
      Unlink(c);
      EndExchanges(c);
    } else {
      Fail(c, Phase::kResponseTimeout, ETIMEDOUT);
    }
  }
  while (hold_list_.head != kNil && slots_[hold_list_.head].deadline <= looked) {
    CloseByPolicy(slots_[hold_list_.head]);
  }
}

// How long epoll may sleep: until the next start, deadline or the end, whichever is first.
int64_t EngineWorker::WaitNanos(int64_t now) const {
  int64_t wake = now + kMaxWaitNanos;
  if (now < end_ && next_index_ < index_limit_) {
    if (now >= lease_until_->load(std::memory_order_relaxed)) {
      // A lapsed lease: no start until it is extended.
      wake = std::min(wake, now + kLeasePollNanos);
    } else if (!open_model_) {
      if (open_ < capacity_) wake = std::min(wake, std::max(now, retry_at_));
    } else {
      wake = std::min(wake, IntendedStart(next_index_));
    }
    wake = std::min(wake, end_);
  }
  if (connect_list_.head != kNil) wake = std::min(wake, slots_[connect_list_.head].deadline);
  if (io_list_.head != kNil) wake = std::min(wake, slots_[io_list_.head].deadline);
  if (hold_list_.head != kNil) wake = std::min(wake, slots_[hold_list_.head].deadline);
  return std::max<int64_t>(0, wake - now);
}

void EngineWorker::AddTo(EngineSnapshot* out) const {
  if (out->sources.size() < source_slots_) {
    out->sources.resize(source_slots_);
    for (uint32_t i = 0; i < source_slots_; ++i) {
      if (!params_.source_ips.empty()) out->sources[i].source = params_.source_ips[i];
    }
  }
  for (uint32_t i = 0; i < source_slots_; ++i) outcomes_[i].AddTo(&out->sources[i].counts);
  out->connect_latency.Merge(connect_latency_.Snapshot());
  out->tls_handshake.Merge(tls_handshake_.Snapshot());
  for (int i = 0; i < kStatusCodes; ++i) {
    if (uint64_t n = status_codes_[i].Load(); n != 0) out->status_codes[kMinStatusCode + i] += n;
  }
  out->connection_latency.Merge(connection_latency_.Snapshot());
  out->start_lateness.Merge(start_lateness_.Snapshot());
  out->connect_call.Merge(connect_call_.Snapshot());
  out->loop_lag.Merge(loop_lag_.Snapshot());
  out->missed_starts += missed_starts_.Load();
  out->late_starts += late_starts_.Load();
  out->in_flight += in_flight_.Load();
  out->held += held_.Load();
}

}  // namespace churnlab
