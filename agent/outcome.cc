#include "agent/outcome.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/tls_reason.h"

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
    case Phase::kTls:
      return "tls";
    case Phase::kStatus:
      return "status";
  }
  return "unknown";
}

std::string OutcomeCodeName(Phase phase, int code) {
  if (phase == Phase::kTls) return TlsReasonName(code);
  if (phase == Phase::kStatus) return absl::StrCat(code, "XX");
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

std::vector<FailureTable::Cell>::const_iterator FailureTable::Find(uint16_t key) const {
  return std::lower_bound(cells_.begin(), cells_.end(), key,
                          [](const Cell& c, uint16_t k) { return c.key < k; });
}

uint64_t FailureTable::Get(Phase phase, int err) const {
  const uint16_t key = KeyOf(phase, err);
  auto it = Find(key);
  return it != cells_.end() && it->key == key ? it->count : 0;
}

void FailureTable::Add(Phase phase, int err, uint64_t n) {
  if (n == 0) return;
  const uint16_t key = KeyOf(phase, err);
  auto it = cells_.begin() + (Find(key) - cells_.cbegin());
  if (it != cells_.end() && it->key == key) {
    it->count += n;
  } else {
    cells_.insert(it, Cell{key, n});
  }
}

void FailureTable::Add(const FailureTable& other) { Merge(other, +1); }

void FailureTable::Subtract(const FailureTable& earlier) { Merge(earlier, -1); }

uint64_t FailureTable::Total() const {
  uint64_t total = 0;
  for (const Cell& c : cells_) total += c.count;
  return total;
}

void FailureTable::Merge(const FailureTable& other, int sign) {
  if (other.cells_.empty()) return;
  std::vector<Cell> merged;
  merged.reserve(cells_.size() + other.cells_.size());
  auto a = cells_.begin();
  auto b = other.cells_.begin();
  while (a != cells_.end() || b != other.cells_.end()) {
    Cell cell;
    if (b == other.cells_.end() || (a != cells_.end() && a->key < b->key)) {
      cell = *a++;
    } else if (a == cells_.end() || b->key < a->key) {
      cell = {b->key, sign > 0 ? b->count : 0 - b->count};
      ++b;
    } else {
      cell = {a->key, sign > 0 ? a->count + b->count : a->count - b->count};
      ++a;
      ++b;
    }
    if (cell.count != 0) merged.push_back(cell);
  }
  cells_ = std::move(merged);
}

void OutcomeCounts::Add(const OutcomeCounts& other) {
  attempted += other.attempted;
  succeeded += other.succeeded;
  requests += other.requests;
  tls_full += other.tls_full;
  tls_resumed += other.tls_resumed;
  failures.Add(other.failures);
}

void OutcomeCounts::Subtract(const OutcomeCounts& earlier) {
  attempted -= earlier.attempted;
  succeeded -= earlier.succeeded;
  requests -= earlier.requests;
  tls_full -= earlier.tls_full;
  tls_resumed -= earlier.tls_resumed;
  failures.Subtract(earlier.failures);
}

LiveOutcomeCounts::~LiveOutcomeCounts() {
  for (std::atomic<Row*>& row : rows_) delete row.load();
}

void LiveOutcomeCounts::AddTo(OutcomeCounts* out) const {
  // Outcomes first, attempts last: every outcome was preceded by its attempt.
  FailureTable read;
  for (int p = 0; p < kPhaseCount; ++p) {
    const Row* row = rows_[p].load(std::memory_order_acquire);
    if (row == nullptr) continue;
    for (int e = 0; e < kErrnoSlots; ++e) {
      if (uint64_t n = (*row)[e].Load(); n != 0) {
        read.cells_.push_back({FailureTable::KeyOf(static_cast<Phase>(p), e), n});
      }
    }
  }
  out->failures.Add(read);
  out->requests += requests_.Load();
  out->tls_full += tls_full_.Load();
  out->tls_resumed += tls_resumed_.Load();
  out->succeeded += succeeded_.Load();
  out->attempted += attempted_.Load();
}

}  // namespace churnlab
