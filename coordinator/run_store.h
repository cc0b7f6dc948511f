// The run store: every run's report (spec, totals, agents) and its per-second series points in
// one SQLite file. Points are appended one at a time as they are made, so a running run's
// series costs one small insert a second however long it gets. Each write is one transaction in
// WAL mode, so a crash at any moment leaves a readable store.
#pragma once

#include <sqlite3.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "churnlab/v1/control.pb.h"
#include "churnlab/v1/report.pb.h"
#include "proto/run_spec.h"

namespace churnlab {

// Tags to look for (RunSpec.tags), by key.
using RunTags = std::map<std::string, std::string>;

// True when `spec` has every tag of `tags`.
bool HasTags(const v1::RunSpec& spec, const RunTags& tags);

// Which runs to list, a page at a time: newest first (by start, then run id).
struct RunQuery {
  RunTags tags;
  size_t limit = kDefaultRunsPage;  // 1..kMaxRunsPage
  std::string after;                // runs listed after this run id; "" from the newest
  v1::RunReport::State state = v1::RunReport::STATE_UNSPECIFIED;  // unspecified: any
};

// A page of runs, and the `after` of the next one ("" when this is the last).
struct RunPage {
  std::vector<v1::RunSummary> runs;
  std::string next;
};

// The query of a ListRunsRequest, checked: INVALID_ARGUMENT for a limit over kMaxRunsPage, a tag
// outside ValidateTag, an `after` that is no run id's shape.
absl::StatusOr<RunQuery> RunQueryOf(const v1::ListRunsRequest& request);

class RunStore {
 public:
  // Opens (creating if needed) the store at `path`; ":memory:" for tests. Runs still marked
  // "running" from a previous process become "interrupted", judged once here (failed, and why:
  // analysis::JudgeRun) and stored so: their data so far stays, and every reader (the listing,
  // the report, a CLI still watching) sees the same verdict.
  static absl::StatusOr<std::unique_ptr<RunStore>> Open(const std::string& path);
  ~RunStore();

  // Inserts or replaces the run's report, but for its series: the points are stored one at a
  // time by AppendPoint and stay.
  absl::Status Save(const v1::RunReport& report);
  // Adds the run's point number `seq` (0, 1, ...).
  absl::Status AppendPoint(const std::string& run_id, int seq, const v1::SeriesPoint& point);
  // NOT_FOUND for an unknown id.
  absl::StatusOr<v1::RunReport> Load(const std::string& run_id);
  // The run's stored series points, in order (none for an unknown id).
  absl::StatusOr<std::vector<v1::SeriesPoint>> LoadPoints(const std::string& run_id);
  // A page of `query`: an index on (started_at, run_id) finds it without reading the others, so
  // the first page of 10,000 stored runs costs what the first page of 10 does (a tag or state
  // filter reads runs newest first until it has a page of matches).
  absl::StatusOr<RunPage> List(const RunQuery& query = {});

 private:
  explicit RunStore(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql);
  // Judges and stores each interrupted run that has no verdict yet (a store from before
  // interrupted runs were judged keeps such rows too).
  absl::Status JudgeInterruptedRuns();
  // Requires mu_.
  absl::StatusOr<std::vector<v1::SeriesPoint>> LoadPointsLocked(const std::string& run_id);

  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace churnlab
