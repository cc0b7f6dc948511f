#include "agent/outcome.h"

namespace churnlab {

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kSocket:
      return "socket";
    case Phase::kBind:
      return "bind";
    case Phase::kConnect:
      return "connect";
    case Phase::kConnectTimeout:
      return "connect-timeout";
    case Phase::kWrite:
      return "write";
    case Phase::kRead:
      return "read";
    case Phase::kProtocol:
      return "protocol";
    case Phase::kResponseTimeout:
      return "response-timeout";
    case Phase::kStopped:
      return "stopped";
  }
  return "unknown";
}

std::string OutcomeCodeName(Phase phase, int code) {
  if (code != 0) return ErrnoName(code);
  switch (phase) {
    case Phase::kRead:
      return "EOF";
    case Phase::kProtocol:
      return "BAD_RESPONSE";
    case Phase::kStopped:
      return "STOPPED";
    default:
      return "UNKNOWN";
  }
}

uint64_t OutcomeCounts::failed() const {
  uint64_t total = 0;
  for (const auto& row : failures) {
    for (uint64_t n : row) total += n;
  }
  return total;
}

void OutcomeCounts::Add(const OutcomeCounts& other) {
  attempted += other.attempted;
  succeeded += other.succeeded;
  requests += other.requests;
  for (int p = 0; p < kPhaseCount; ++p) {
    for (int e = 0; e < kErrnoSlots; ++e) failures[p][e] += other.failures[p][e];
  }
}

void OutcomeCounts::Subtract(const OutcomeCounts& earlier) {
  attempted -= earlier.attempted;
  succeeded -= earlier.succeeded;
  requests -= earlier.requests;
  for (int p = 0; p < kPhaseCount; ++p) {
    for (int e = 0; e < kErrnoSlots; ++e) failures[p][e] -= earlier.failures[p][e];
  }
}

void LiveOutcomeCounts::AddTo(OutcomeCounts* out) const {
  // Outcomes first, attempts last: every outcome was preceded by its attempt.
  for (int p = 0; p < kPhaseCount; ++p) {
    for (int e = 0; e < kErrnoSlots; ++e) out->failures[p][e] += failures_[p][e].Load();
  }
  out->requests += requests_.Load();
  out->succeeded += succeeded_.Load();
  out->attempted += attempted_.Load();
}

}  // namespace churnlab
