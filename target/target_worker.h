// One churnlab-target thread: its own SO_REUSEPORT listening sockets, epoll loop, connections and
// counters. Internal to the target; use TargetServer (target_server.h).
#pragma once

#include <openssl/ssl.h>
#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/os_sys_calls.h"
#include "common/single_writer_counter.h"
#include "common/wire_protocol.h"
#include "target/target_params.h"

namespace churnlab {

struct TargetCounters {
  uint64_t accepted = 0;
  uint64_t answered = 0;          // responses fully written
  uint64_t closed_by_peer = 0;    // the client's FIN arrived
  uint64_t closed_by_server = 0;  // the server closed first (close mode server, or asked to)
  uint64_t reset = 0;             // ECONNRESET from the client
  uint64_t errors = 0;            // other socket errors and unparseable requests
  uint64_t leaked = 0;            // close mode never: connections kept open after the client's FIN
  uint64_t leak_cap_closes = 0;   // ... closed anyway because max_leaked was reached
  // TLS handshakes: completed full, completed resuming a session, failed (or cut off).
  uint64_t tls_full = 0;
  uint64_t tls_resumed = 0;
  uint64_t tls_failed = 0;
};

class TargetWorker {
 public:
  // State shared by all workers: the one counter of the counter protocol, and the number of
  // connections leaked under CloseMode::kNever (max_leaked caps the total, not each worker).
  struct Shared {
    std::atomic<int32_t> counter{0};
    std::atomic<int64_t> leaked{0};
  };
  // `tls`: the server context for protocols tls and https (shared; null otherwise).
  TargetWorker(const TargetParams& params, SSL_CTX* tls, Shared& shared, OsSysCalls& sys,
               Clock& clock);
  ~TargetWorker();
  TargetWorker(const TargetWorker&) = delete;
  TargetWorker& operator=(const TargetWorker&) = delete;

  // Listens on `addresses` with SO_REUSEPORT; a port 0 entry is replaced with the port the kernel
  // chose, so the next worker joins the same port. Errors name the address.
  absl::Status Listen(std::vector<SocketAddress>& addresses);
  // Serves until Wake() is called, then closes every socket it owns.
  void Run();
  // Ends Run(); safe from any thread.
  void Wake();
  void AddTo(TargetCounters* out) const;

 private:
  struct Conn {
    uint32_t serial = 0;       // 0 = no connection on this fd
    bool pending = false;      // a response is being delayed or written
    bool close_after = false;  // close once the pending response is written
    bool want_write = false;   // EPOLLOUT armed for the rest of `out`
    bool handshaking = false;  // TLS: the handshake is not done yet
    SSL* ssl = nullptr;        // TLS: owned
    HttpParser http{HttpParser::Kind::kRequest};
    std::string in;
    size_t in_pos = 0;
    std::string out;
    size_t out_pos = 0;
  };
  struct Timer {
    int64_t due;
    int fd;
    uint32_t serial;
    bool operator>(const Timer& o) const { return due > o.due; }
  };

  void OnListenerReady(int64_t now);
  void SetListenersArmed(bool armed);
  void OnReadable(int fd);
  // TLS: one handshake step; false when the connection ended (failed).
  bool Handshake(int fd);
  // recv() and send(), through TLS when it is on.
  SysCallResult ReceiveBytes(Conn& c, int fd);
  SysCallResult SendBytes(Conn& c, int fd);
  // Frees the connection's TLS state (close_notify first when `notify`) and its slot.
  void Forget(int fd, bool notify);
  void ProcessInput(int fd);
  void Answer(int fd, bool asked_to_close);
  void Respond(int fd);
  void Flush(int fd);
  void OnPeerClosed(int fd);
  // Closes the socket; `notify` sends TLS close_notify first.
  void CloseConn(int fd, bool notify = false);
  void RunDueTimers(int64_t now);
  int64_t WaitNanos(int64_t now) const;
  void SetInterest(int fd, uint32_t events);

  const TargetParams& params_;
  SSL_CTX* const tls_;
  Shared& shared_;
  OsSysCalls& sys_;
  Clock& clock_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::vector<int> listeners_;
  bool listeners_armed_ = true;
  int64_t accept_interval_ = 0;  // ns between accepts of this worker; 0 = unlimited
  int64_t next_accept_ = 0;
  uint32_t next_serial_ = 1;
  std::vector<Conn> conns_;  // indexed by fd
  std::vector<int> leaked_fds_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::mt19937_64 rng_;
  std::string responses_[2];  // HTTP response without / with "Connection: close"
  std::vector<char> scratch_;

  SingleWriterCounter accepted_;
  SingleWriterCounter answered_;
  SingleWriterCounter closed_by_peer_;
  SingleWriterCounter closed_by_server_;
  SingleWriterCounter reset_;
  SingleWriterCounter errors_;
  SingleWriterCounter leaked_;
  SingleWriterCounter leak_cap_closes_;
  SingleWriterCounter tls_full_;
  SingleWriterCounter tls_resumed_;
  SingleWriterCounter tls_failed_;
};

}  // namespace churnlab
