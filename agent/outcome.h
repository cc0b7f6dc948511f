// How a connection ended: success, or a failure keyed by the phase it failed in and an errno.
// The per-source tables are dense arrays indexed by (phase, errno), so counting a failure on the
// hot path is one add; names are attached only when a snapshot is printed.
#pragma once

#include <array>
#include <cstdint>
#include <string>

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
};
inline constexpr int kPhaseCount = 9;
inline constexpr int kErrnoSlots = kMaxTrackedErrno + 1;

// "socket", "bind", "connect", "connect-timeout", "write", "read", "protocol",
// "response-timeout", "stopped".
const char* PhaseName(Phase phase);
// The errno name, or for code 0 what it means in that phase ("EOF", "BAD_RESPONSE", "STOPPED").
std::string OutcomeCodeName(Phase phase, int code);

inline int ErrnoSlot(int err) { return err < 0 || err > kMaxTrackedErrno ? kMaxTrackedErrno : err; }

// Plain counts for one source IP, as read in a snapshot.
struct OutcomeCounts {
  uint64_t attempted = 0;  // connections started (socket() called)
  uint64_t succeeded = 0;  // all requests answered and closed by the policy
  uint64_t requests = 0;   // request/response exchanges completed, in succeeded or failed ones
  std::array<std::array<uint64_t, kErrnoSlots>, kPhaseCount> failures{};

  uint64_t failed() const;
  uint64_t failures_of(Phase phase, int err) const {
    return failures[static_cast<int>(phase)][ErrnoSlot(err)];
  }
  void Add(const OutcomeCounts& other);
  void Subtract(const OutcomeCounts& earlier);
  // Calls fn(phase, code, count) for every non-zero failure cell.
  template <typename Fn>
  void ForEachFailure(Fn fn) const {
    for (int p = 0; p < kPhaseCount; ++p) {
      for (int e = 0; e < kErrnoSlots; ++e) {
        if (failures[p][e] != 0) fn(static_cast<Phase>(p), e, failures[p][e]);
      }
    }
  }
};

// The same counts as a worker thread keeps them while it runs.
class LiveOutcomeCounts {
 public:
  void Attempt() { attempted_.Add(); }
  void Succeed() { succeeded_.Add(); }
  void Request() { requests_.Add(); }
  void Fail(Phase phase, int err) { failures_[static_cast<int>(phase)][ErrnoSlot(err)].Add(); }
  void AddTo(OutcomeCounts* out) const;

 private:
  SingleWriterCounter attempted_;
  SingleWriterCounter succeeded_;
  SingleWriterCounter requests_;
  std::array<std::array<SingleWriterCounter, kErrnoSlots>, kPhaseCount> failures_;
};

}  // namespace churnlab
