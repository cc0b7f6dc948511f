// How a connection ended: success, or a failure keyed by the phase it failed in and an errno.
// A worker counts failures in dense rows indexed by errno, one row per phase made on the
// phase's first failure, so counting is one add and a source that never fails costs no table;
// snapshots keep only the cells that are not zero. Names are attached only when printed.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/errno_name.h"
#include "common/single_writer_counter.h"

namespace churnlab {

enum class Phase : uint8_t {
  kSocket,           // socket(): EMFILE, ENFILE, ENOBUFS
  kBind,             // setsockopt()/bind() of the source IP: EADDRINUSE, EADDRNOTAVAIL
  kConnect,          // connect() or its asynchronous result: EADDRNOTAVAIL, ECONNREFUSED, ...
  kConnectTimeout,   // no handshake within connect_timeout (code ETIMEDOUT)
  kWrite,            // send() of a request: EPIPE, ECONNRESET
  kRead,             // recv() of a response: ECONNRESET; code 0 = the peer closed too early
  kProtocol,         // a response that does not parse (code 0)
  kResponseTimeout,  // no response, or no server FIN under server-fin, within io_timeout
  kStopped,          // still in flight when the run was stopped (code 0)
  kTls,              // the TLS handshake: the code is a TlsReason (agent/tls_client.h), no errno
  kStatus,  // a response whose status is not the expected one: the code is its class (2..5)
};
inline constexpr int kPhaseCount = 11;
inline constexpr int kErrnoSlots = kMaxTrackedErrno + 1;

// "socket", "bind", "connect", "connect-timeout", "write", "read", "protocol",
// "response-timeout", "stopped", "tls", "status".
const char* PhaseName(Phase phase);
// The errno name, or for code 0 what it means in that phase ("EOF", "BAD_RESPONSE", "STOPPED");
// in phase tls the reason's name ("CERT_HAS_EXPIRED", "ALERT_UNKNOWN_CA", "TIMEOUT"), in phase
// status the class ("4XX").
std::string OutcomeCodeName(Phase phase, int code);

inline int ErrnoSlot(int err) { return err < 0 || err > kMaxTrackedErrno ? kMaxTrackedErrno : err; }

// Failure counts by (phase, errno slot), as a snapshot reads them: only cells that are not zero,
// in (phase, slot) order. A run with a million connections and few kinds of failure keeps a
// few cells per source, not 9 x 141.
class FailureTable {
 public:
  uint64_t Get(Phase phase, int err) const;
  // Adds `n` to a cell (its slot as ErrnoSlot gives).
  void Add(Phase phase, int err, uint64_t n);
  void Add(const FailureTable& other);
  // Takes an earlier reading of the same counters away; cells that fall to zero go.
  void Subtract(const FailureTable& earlier);
  uint64_t Total() const;
  // Calls fn(phase, code, count) for every cell, in (phase, code) order.
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const Cell& c : cells_)
      fn(static_cast<Phase>(c.key / kErrnoSlots), c.key % kErrnoSlots, c.count);
  }
  size_t size() const { return cells_.size(); }

 private:
  friend class LiveOutcomeCounts;  // reads its rows straight into cells, in order
  struct Cell {
    uint16_t key;  // phase * kErrnoSlots + slot
    uint64_t count;
  };
  static uint16_t KeyOf(Phase phase, int err) {
    return static_cast<uint16_t>(static_cast<int>(phase) * kErrnoSlots + ErrnoSlot(err));
  }
  // The first cell whose key is not less than `key`.
  std::vector<Cell>::const_iterator Find(uint16_t key) const;
  // Merges `other` into the cells, each of its counts times `sign`.
  void Merge(const FailureTable& other, int sign);

  std::vector<Cell> cells_;
};

// Plain counts for one source IP, as read in a snapshot.
struct OutcomeCounts {
  uint64_t attempted = 0;  // connections started (socket() called)
  uint64_t succeeded = 0;  // all requests answered and closed by the policy
  uint64_t requests = 0;   // request/response exchanges completed, in succeeded or failed ones
  // TLS handshakes completed: full ones, and ones where the server resumed the offered session.
  uint64_t tls_full = 0;
  uint64_t tls_resumed = 0;
  FailureTable failures;

  uint64_t failed() const { return failures.Total(); }
  uint64_t failures_of(Phase phase, int err) const { return failures.Get(phase, err); }
  void Add(const OutcomeCounts& other);
  void Subtract(const OutcomeCounts& earlier);
  // Calls fn(phase, code, count) for every non-zero failure cell.
  template <typename Fn>
  void ForEachFailure(Fn fn) const {
    failures.ForEach(fn);
  }
};

// The same counts as a worker thread keeps them while it runs. Only the worker writes; any
// thread may read (AddTo).
class LiveOutcomeCounts {
 public:
  LiveOutcomeCounts() = default;
  LiveOutcomeCounts(const LiveOutcomeCounts&) = delete;
  LiveOutcomeCounts& operator=(const LiveOutcomeCounts&) = delete;
  ~LiveOutcomeCounts();

  void Attempt() { attempted_.Add(); }
  // Takes back an Attempt() whose connect() never came (the start turned out late).
  void Withdraw() { attempted_.Set(attempted_.Load() - 1); }
  void Succeed() { succeeded_.Add(); }
  void Request() { requests_.Add(); }
  void Handshake(bool resumed) { (resumed ? tls_resumed_ : tls_full_).Add(); }
  void Fail(Phase phase, int err) { RowOf(phase)[ErrnoSlot(err)].Add(); }
  void AddTo(OutcomeCounts* out) const;

 private:
  using Row = std::array<SingleWriterCounter, kErrnoSlots>;
  // The phase's row, made on its first failure (by the one writer; published with release, so
  // a reader that sees the pointer sees zeroed counters).
  Row& RowOf(Phase phase) {
    std::atomic<Row*>& slot = rows_[static_cast<int>(phase)];
    Row* row = slot.load(std::memory_order_relaxed);
    if (row == nullptr) {
      row = new Row();
      slot.store(row, std::memory_order_release);
    }
    return *row;
  }

  SingleWriterCounter attempted_;
  SingleWriterCounter succeeded_;
  SingleWriterCounter requests_;
  SingleWriterCounter tls_full_;
  SingleWriterCounter tls_resumed_;
  std::array<std::atomic<Row*>, kPhaseCount> rows_{};
};

}  // namespace churnlab
