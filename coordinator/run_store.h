// The run store: every run's report (spec, totals, agents, per-second series) in one SQLite file.
// Each write is one transaction in WAL mode, so a crash at any moment leaves a readable store.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "churnlab/v1/control.pb.h"
#include "churnlab/v1/report.pb.h"

namespace churnlab {

class RunStore {
 public:
  // Opens (creating if needed) the store at `path`; ":memory:" for tests. Runs still marked
  // "running" from a previous process become "interrupted": their data so far stays.
  static absl::StatusOr<std::unique_ptr<RunStore>> Open(const std::string& path);
  ~RunStore();

  // Inserts or replaces the run's report (its series included).
  absl::Status Save(const v1::RunReport& report);
  // NOT_FOUND for an unknown id.
  absl::StatusOr<v1::RunReport> Load(const std::string& run_id);
  // Newest first.
  absl::StatusOr<std::vector<v1::RunSummary>> List();

 private:
  explicit RunStore(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql);

  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace churnlab
