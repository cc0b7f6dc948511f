// One engine thread: its own epoll loop, its own connections and its own counters. Internal to
// the engine; use Engine (engine.h).
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "agent/engine_snapshot.h"
#include "agent/outcome.h"
#include "agent/pacer.h"
#include "agent/port_picker.h"
#include "agent/tls_client.h"
#include "common/clock.h"
#include "common/engine_params.h"
#include "common/histogram.h"
#include "common/os_sys_calls.h"
#include "common/wire_protocol.h"

namespace churnlab {

class EngineWorker {
 public:
  // Worker `index` of `count` handles the run's connections index, index+count, index+2*count...
  // `free_bind[i]`: source_ips[i] is set IP_FREEBIND/IPV6_FREEBIND before bind() (an address
  // in a prefix routed `local`, on no interface).
  EngineWorker(const EngineParams& params, std::vector<bool> free_bind, int index, int count,
               OsSysCalls& sys, Clock& clock);
  ~EngineWorker();
  EngineWorker(const EngineWorker&) = delete;
  EngineWorker& operator=(const EngineWorker&) = delete;

  // Creates the epoll instance and the connection slots; an error names the syscall.
  absl::Status Init();
  // Runs the load from `start_nanos` (on the clock) until the duration ends and the in-flight
  // connections finish or time out, or until `stop` becomes true (in-flight ones then end as
  // Phase::kStopped). Hard bounds, whatever the kernel does: no connect() at or after the end
  // or while the lease has lapsed (`lease_until`, on the clock, read again just before each
  // connect()), and every fd closed by the end plus the connections' own timeouts. Call once,
  // from the worker's own thread.
  void Run(int64_t start_nanos, const std::atomic<bool>& stop,
           const std::atomic<int64_t>& lease_until);
  // Adds this worker's counters to `out`; safe from any thread while Run() is going.
  void AddTo(EngineSnapshot* out) const;
  // From connection `from_index` (at `from_nanos` after the start) on, the engine's total rate is
  // `rate`; applied by the worker's own thread at its next loop pass. Safe from any thread.
  void PostRateChange(uint64_t from_index, int64_t from_nanos, double rate);
  // New connections go to the update's destinations from the worker's next loop pass on
  // (Engine::UpdateDestinations checked it against the table). Safe from any thread.
  void PostDestinations(DestinationUpdate update);

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  enum class State : uint8_t {
    kFree,
    kConnecting,
    kHandshaking,  // TLS
    kSending,
    kReceiving,
    kAwaitingFin,
    kAwaitingSession,  // connect-only TLS 1.3 with resumption: the server's ticket comes after
    kHolding
  };
  enum class ListId : uint8_t { kNone, kConnect, kIo, kHold };

  // Bind mode engine: the port a connection picked (0: none), whether its SYN went out (a
  // socket that never sent one, or was refused, leaves nothing behind), whether its handshake
  // completed, whether it closed by RST or after the server's FIN (no TIME_WAIT on this side),
  // and whether the kernel refused the port's four-tuple or bind().
  struct PickedPort {
    uint16_t port = 0;
    uint32_t handshake_micros = 0;  // socket() to the TCP handshake's end: about a round trip
    bool syn_sent = false;
    bool connected = false;
    bool taking_over = false;  // the port's TIME_WAIT (a timestamped one of ours) is taken over
    bool reset = false;
    bool peer_closed_first = false;
    bool refused = false;
  };
  struct Connection {
    int fd = -1;
    uint32_t generation = 0;
    uint32_t prev = kNil;
    uint32_t next = kNil;
    uint32_t source = 0;
    uint32_t target = 0;
    uint32_t requests_done = 0;
    uint32_t send_offset = 0;
    State state = State::kFree;
    ListId list = ListId::kNone;
    uint8_t counter_received = 0;
    PickedPort picked;  // bind mode engine
    int64_t started_at = 0;
    int64_t deadline = 0;
    int64_t handshake_started = 0;  // TLS: when the TCP handshake completed
    SSL* ssl = nullptr;             // TLS: owned, freed by Release()
    HttpParser http;
  };
  struct List {
    uint32_t head = kNil;
    uint32_t tail = kNil;
  };

  // Starting connections: at most kMaxStartsPerPass, and only while the pass is under its time
  // budget, so that starts cannot starve expiries and I/O (or the other way round).
  void StartDue(int64_t pass_start);
  void StartOpenModel(int64_t pass_start);
  // When connection `index` is due on the clock; INT64_MAX when the profile never reaches it.
  int64_t IntendedStart(uint64_t index) const;
  void StartClosedModel(int64_t pass_start);
  // Open model, once the end has come: the starts due before it that the loop did not reach are
  // counted as late-skipped, so every scheduled start is made, missed or skipped.
  void SkipUnmadeStarts();
  // True when a start may still be made at `now`: before the end, not stopped, pass not over.
  bool MayStart(int64_t now, int64_t pass_start) const;
  // Whether a connect() may go out now: before the end and the lease's, and not stopped.
  bool MayConnect(int64_t now) const;
  // Starts connection `global_index` at `now` (the clock read that allowed it). False when it
  // failed at once (counted).
  bool StartConnection(uint64_t global_index, int64_t now);
  // The source and destination of connection `global_index`.
  void ChoosePair(Connection& c, uint64_t global_index) const;
  bool OpenSocket(Connection& c);
  // Bind mode engine: SO_REUSEADDR, a port from ports_, bind(source, port). False when it failed
  // (counted; no port left toward the destination is EADDRNOTAVAIL in phase bind).
  bool BindPickedPort(Connection& c, const SocketAddress& source);
  // The pair of a connection for ports_: its source and its destination address (two entries
  // of the table with one address, a name's and an IP literal's, are one destination).
  uint64_t PairOf(const Connection& c) const {
    return uint64_t{same_address_[c.target]} * source_slots_ + c.source;
  }
  // bind() to `address`; false when it failed (counted).
  bool Bind(Connection& c, const SocketAddress& address);
  // Closed model: a connection that failed before its handshake holds the next start back, for a
  // delay that doubles while failures go on, so a failure that returns at once cannot spin.
  void HoldBackClosedModel(int64_t now);

  // The connection state machine, driven by epoll events.
  void HandleEvent(uint32_t slot, uint32_t events);
  void OnConnected(Connection& c);
  void StartHandshake(Connection& c);
  void ContinueHandshake(Connection& c);
  // After the handshakes: the first request, or for connect-only, the close.
  void StartExchanges(Connection& c);
  void OnSessionEvent(Connection& c);
  // recv() and send(), through TLS when the protocol uses it.
  SysCallResult ReceiveBytes(Connection& c, char* buf, size_t len);
  SysCallResult SendBytes(Connection& c, const char* buf, size_t len);
  void SendRequest(Connection& c);
  void ReadResponse(Connection& c);
  void OnResponse(Connection& c);
  // http and https: counts the response's status; false when it failed the expected one.
  bool CheckStatus(Connection& c);
  // A connection whose exchanges are done: the hold, or the close.
  void EndExchanges(Connection& c);
  // Closes a connection whose exchanges are done as the close policy says.
  void CloseByPolicy(Connection& c);
  // Keeps a done connection open for the hold; the peer closing or sending first fails it.
  void StartHold(Connection& c);
  void OnHeldEvent(Connection& c);
  void Finish(Connection& c);
  void Fail(Connection& c, Phase phase, int err);
  void Release(Connection& c);
  // When bind mode engine may take a closed connection's port again toward its destination
  // (`soon`: in how many ns, where the answer says soon).
  PortPicker::Reuse ReuseOf(Connection& c, int64_t* soon);
  // How long a TIME_WAIT of `c`'s waits to be taken over; 0 without TCP timestamps.
  int64_t TakeoverWait(Connection& c);
  void AbortAll();

  // Deadlines: FIFO lists stay sorted because every entry in a list has the same timeout.
  void Append(List& list, ListId id, uint32_t slot, int64_t deadline);
  void Unlink(Connection& c);
  // Fails the connections whose deadline is at or before `looked`, the moment the loop last asked
  // the kernel for ready events: only a connection the kernel had not answered by its deadline
  // times out, however long the loop itself was busy.
  void ExpireTimeouts(int64_t looked);
  int64_t WaitNanos(int64_t now) const;

  uint32_t SlotOf(const Connection& c) const { return static_cast<uint32_t>(&c - slots_.data()); }
  absl::string_view RequestFor(const Connection& c) const;

  const EngineParams& params_;
  const std::vector<bool> free_bind_;
  const int index_;
  const int count_;
  OsSysCalls& sys_;
  Clock& clock_;
  Pacer pacer_;
  // Rate changes posted by other threads, taken into pacer_ by Run().
  struct RateChange {
    uint64_t from_index;
    int64_t from_nanos;
    double rate;
  };
  std::mutex changes_mu_;
  std::vector<RateChange> changes_;
  std::vector<DestinationUpdate> destination_changes_;
  std::atomic<bool> has_changes_{false};
  void TakeChanges();
  // Takes in the table's entries from `first` on: their requests, and the first entry of each
  // one's address (same_address_).
  void AddDestinations(size_t first);
  const bool open_model_;
  const uint64_t capacity_;  // open: max in flight; closed: concurrency (this worker's share)
  const uint64_t index_limit_;
  const uint32_t source_slots_;
  const int64_t connect_timeout_;
  const int64_t io_timeout_;
  const int64_t hold_;
  // Open model: a start due longer ago than this is counted late-skipped, not made late.
  const int64_t late_limit_;
  const std::atomic<bool>* stop_ = nullptr;
  const std::atomic<int64_t>* lease_until_ = nullptr;

  int epoll_fd_ = -1;
  std::vector<Connection> slots_;
  std::vector<uint32_t> free_slots_;
  List connect_list_;
  List io_list_;
  List hold_list_;
  std::unique_ptr<TlsClient> tls_;     // protocols tls and https
  std::unique_ptr<PortPicker> ports_;  // bind mode engine: this worker's slice
  // The destination table (params' targets, then addresses later lookups added; it only grows,
  // so a connection's target index stays valid), and the entries new connections go to.
  std::vector<SocketAddress> targets_;
  std::vector<std::string> target_names_;  // per entry, its host name; "" for an IP literal
  std::vector<uint32_t> active_;
  // Per entry, the first entry with its address; and each address's first entry.
  std::vector<uint32_t> same_address_;
  absl::flat_hash_map<SocketAddress, uint32_t> first_of_address_;
  std::vector<std::string> requests_;       // per target: a keep-alive request
  std::vector<std::string> last_requests_;  // per target: the last request of a connection
  std::vector<char> scratch_;
  std::vector<epoll_event> events_;

  int64_t start_ = 0;
  int64_t end_ = 0;
  uint64_t next_index_ = 0;
  uint64_t open_ = 0;        // connections in flight, the owner's copy of in_flight_
  uint64_t holding_ = 0;     // of those, held after their exchanges: the owner's copy of held_
  int64_t retry_at_ = 0;     // closed model: no start before this
  int64_t retry_delay_ = 0;  // closed model: the current hold-back after a failed start

  // Read by AddTo() from other threads.
  std::unique_ptr<LiveOutcomeCounts[]> outcomes_;
  LiveHistogram connect_latency_;
  LiveHistogram tls_handshake_;
  LiveHistogram connection_latency_;
  LiveHistogram start_lateness_;
  LiveHistogram connect_call_;  // socket() through connect() returning: the kernel's port search
  LiveHistogram loop_lag_;      // per loop pass: how long the loop was not looking at the kernel
  SingleWriterCounter missed_starts_;
  SingleWriterCounter late_starts_;
  SingleWriterCounter in_flight_;
  SingleWriterCounter held_;
  // http and https: responses by status code, 100..599 (kStatusCodes entries from 100).
  std::unique_ptr<SingleWriterCounter[]> status_codes_;
};

}  // namespace churnlab
