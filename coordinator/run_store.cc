#include "coordinator/run_store.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "analysis/verdict.h"
#include "common/status_macros.h"
#include "proto/message_json.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void Bind(int index, const std::string& text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  std::string Column(int index) {
    const unsigned char* text = sqlite3_column_text(stmt_, index);
    return text == nullptr ? "" : reinterpret_cast<const char*>(text);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// The state and verdict columns hold their words ("completed", "pass"); a word this build does
// not know reads as unspecified (0).
template <typename Enum>
Enum FromColumn(const std::string& word) {
  absl::StatusOr<int> n = EnumFromWord(*google::protobuf::GetEnumDescriptor<Enum>(), word);
  return static_cast<Enum>(n.ok() ? *n : 0);
}

// Rows hold the JSON users read (counts as numbers, choices as words), so `sqlite3` and
// json_extract() see what the API serves; ParseMessageJson also reads older rows. A message
// that cannot be written so is refused: nothing is stored that cannot be read back.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  return EncodeMessageJson(message, /*one_line=*/true);
}

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  return absl::InternalError(absl::StrCat("run store: ", what, ": ", sqlite3_errmsg(db)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RunStore>> RunStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    absl::Status error = absl::UnavailableError(
        absl::StrCat("cannot open the run store ", path, ": ", sqlite3_errmsg(db)));
    sqlite3_close(db);
    return error;
  }
  std::unique_ptr<RunStore> store(new RunStore(db));
  sqlite3_busy_timeout(db, 5000);
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                          "CREATE TABLE IF NOT EXISTS runs ("
                          "  run_id TEXT PRIMARY KEY, name TEXT, state TEXT, started_at TEXT,"
                          "  verdict TEXT, report_json TEXT NOT NULL)",
                          // The listing's order, so that a page reads only its own rows.
                          "CREATE INDEX IF NOT EXISTS runs_newest ON runs (started_at DESC, "
                          "run_id DESC)",
                          "CREATE TABLE IF NOT EXISTS points ("
                          "  run_id TEXT NOT NULL, seq INTEGER NOT NULL, point_json TEXT NOT NULL,"
                          "  PRIMARY KEY (run_id, seq))",
                          "UPDATE runs SET state = 'interrupted' WHERE state = 'running'"}) {
    if (absl::Status s = store->Exec(sql); !s.ok()) return s;
  }
  if (absl::Status s = store->JudgeInterruptedRuns(); !s.ok()) return s;
  return store;
}

absl::Status RunStore::JudgeInterruptedRuns() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Statement stmt(db_,
                   "SELECT run_id FROM runs WHERE state = 'interrupted' AND "
                   "COALESCE(verdict, '') IN ('', 'unspecified')");
    if (!stmt.ok()) return SqliteError(db_, "prepare interrupted");
    while (sqlite3_step(stmt.get()) == SQLITE_ROW) ids.push_back(stmt.Column(0));
  }
  for (const std::string& id : ids) {
    absl::StatusOr<v1::RunReport> report = Load(id);
    if (!report.ok()) continue;  // a row that does not parse: the listing names its problem
    analysis::JudgeRun(&*report);
    RETURN_IF_ERROR(Save(*report));
  }
  return absl::OkStatus();
}

RunStore::~RunStore() { sqlite3_close(db_); }

absl::Status RunStore::Exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    absl::Status error = absl::InternalError(absl::StrCat("run store: ", sql, ": ", message));
    sqlite3_free(message);
    return error;
  }
  return absl::OkStatus();
}

absl::Status RunStore::AppendPoint(const std::string& run_id, int seq,
                                   const v1::SeriesPoint& point) {
  absl::StatusOr<std::string> json = ToJson(point);
  if (!json.ok()) return json.status();
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "INSERT OR REPLACE INTO points (run_id, seq, point_json) VALUES (?, ?, ?)");
  if (!stmt.ok()) return SqliteError(db_, "prepare point");
  stmt.Bind(1, run_id);
  sqlite3_bind_int(stmt.get(), 2, seq);
  stmt.Bind(3, *json);
  if (sqlite3_step(stmt.get()) != SQLITE_DONE) return SqliteError(db_, "point");
  return absl::OkStatus();
}

absl::Status RunStore::Save(const v1::RunReport& report) {
  absl::StatusOr<std::string> json;
  if (report.series_size() == 0) {
    json = ToJson(report);
  } else {
    v1::RunReport head = report;
    head.clear_series();  // the points are AppendPoint's
    json = ToJson(head);
  }
  if (!json.ok()) return json.status();
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_,
                 "INSERT OR REPLACE INTO runs (run_id, name, state, started_at, verdict, "
                 "report_json) VALUES (?, ?, ?, ?, ?, ?)");
  if (!stmt.ok()) return SqliteError(db_, "prepare save");
  stmt.Bind(1, report.run_id());
  stmt.Bind(2, report.spec().name());
  stmt.Bind(3, Word(report.state()));
  stmt.Bind(4, report.started_at());
  stmt.Bind(5, Word(report.verdict()));
  stmt.Bind(6, *json);
  if (sqlite3_step(stmt.get()) != SQLITE_DONE) return SqliteError(db_, "save");
  return absl::OkStatus();
}

absl::StatusOr<v1::RunReport> RunStore::Load(const std::string& run_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "SELECT state, report_json FROM runs WHERE run_id = ?");
  if (!stmt.ok()) return SqliteError(db_, "prepare load");
  stmt.Bind(1, run_id);
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) {
    return absl::NotFoundError(absl::StrCat("no run '", run_id, "'"));
  }
  v1::RunReport report;
  if (!ParseMessageJson(stmt.Column(1), &report).ok()) {
    return absl::DataLossError(absl::StrCat("run ", run_id, ": stored report does not parse"));
  }
  report.set_state(
      FromColumn<v1::RunReport::State>(stmt.Column(0)));  // "interrupted" is only in the column
  absl::StatusOr<std::vector<v1::SeriesPoint>> points = LoadPointsLocked(run_id);
  if (!points.ok()) return points.status();
  // A store from before points had a table of their own keeps them in the report.
  if (!points->empty()) report.mutable_series()->Assign(points->begin(), points->end());
  return report;
}

absl::StatusOr<std::vector<v1::SeriesPoint>> RunStore::LoadPoints(const std::string& run_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return LoadPointsLocked(run_id);
}

absl::StatusOr<std::vector<v1::SeriesPoint>> RunStore::LoadPointsLocked(const std::string& run_id) {
  Statement stmt(db_, "SELECT point_json FROM points WHERE run_id = ? ORDER BY seq");
  if (!stmt.ok()) return SqliteError(db_, "prepare load points");
  stmt.Bind(1, run_id);
  std::vector<v1::SeriesPoint> out;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    if (!ParseMessageJson(stmt.Column(0), &out.emplace_back()).ok()) {
      return absl::DataLossError(absl::StrCat("run ", run_id, ": a stored point does not parse"));
    }
  }
  return out;
}

bool HasTags(const v1::RunSpec& spec, const RunTags& tags) {
  for (const auto& [key, value] : tags) {
    auto it = spec.tags().find(key);
    if (it == spec.tags().end() || it->second != value) return false;
  }
  return true;
}

absl::StatusOr<RunQuery> RunQueryOf(const v1::ListRunsRequest& request) {
  RunQuery query;
  query.tags = RunTags(request.tags().begin(), request.tags().end());
  for (const auto& [key, value] : query.tags) RETURN_IF_ERROR(ValidateTag(key, value));
  if (request.limit() > kMaxRunsPage) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: ", request.limit(), " is not in 1..", kMaxRunsPage));
  }
  query.limit = request.limit() == 0 ? kDefaultRunsPage : request.limit();
  const std::string& after = request.after();
  if (after.size() > 128 || !std::all_of(after.begin(), after.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
      })) {
    return absl::InvalidArgumentError(
        "after: not a run id (at most 128 characters of [A-Za-z0-9._-])");
  }
  query.after = after;
  if (!v1::RunReport::State_IsValid(request.state())) {
    return absl::InvalidArgumentError(absl::StrCat("state: ", request.state(), " is no state"));
  }
  query.state = request.state();
  return query;
}

namespace {

// The listing's columns of one row: a row whose report is no JSON (a store written by hand, or by
// a build that stored what it could not encode) is listed from its columns with a problem.
v1::RunSummary SummaryOf(Statement& stmt) {
  v1::RunSummary summary;
  summary.set_run_id(stmt.Column(0));
  summary.set_name(stmt.Column(1));
  summary.set_state(FromColumn<v1::RunReport::State>(stmt.Column(2)));
  summary.set_started_at(stmt.Column(3));
  summary.set_verdict(FromColumn<v1::RunReport::Verdict>(stmt.Column(4)));
  summary.set_achieved_rate(sqlite3_column_double(stmt.get(), 5));
  summary.set_requested_rate(sqlite3_column_double(stmt.get(), 6));
  // The stored object, read as a summary's tags (the same map).
  if (std::string json = stmt.Column(7); !json.empty()) {
    v1::RunSummary tagged;
    if (ParseMessageJson(absl::StrCat("{\"tags\": ", json, "}"), &tagged).ok()) {
      *summary.mutable_tags() = std::move(*tagged.mutable_tags());
    }
  }
  if (sqlite3_column_int(stmt.get(), 8) == 0) {
    summary.set_problem("its stored report is not JSON: `churnlab report` cannot read it");
  }
  return summary;
}

}  // namespace

absl::StatusOr<RunPage> RunStore::List(const RunQuery& query) {
  // One json_extract per tag, its path and value bound: tag keys are of [A-Za-z0-9_.-/]
  // (ValidateTag), so "$.spec.tags."KEY"" names exactly that key. json_valid() first: on a row
  // that is no JSON json_extract() would fail the whole query.
  std::string sql =
      "SELECT run_id, name, state, started_at, verdict, "
      "CASE WHEN json_valid(report_json) THEN json_extract(report_json, '$.achieved_rate') END, "
      "CASE WHEN json_valid(report_json) THEN json_extract(report_json, '$.requested_rate') END, "
      "CASE WHEN json_valid(report_json) THEN json_extract(report_json, '$.spec.tags') END, "
      "json_valid(report_json) FROM runs WHERE 1";
  std::vector<std::string> values;
  if (query.state != v1::RunReport::STATE_UNSPECIFIED) {
    sql += " AND state = ?";
    values.push_back(Word(query.state));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!query.after.empty()) {
    // After that run in the listing's order; a run the store does not hold (one it could not
    // save yet) is placed by its id, which sorts by its start.
    Statement start(db_, "SELECT started_at FROM runs WHERE run_id = ?");
    if (!start.ok()) return SqliteError(db_, "prepare list");
    start.Bind(1, query.after);
    if (sqlite3_step(start.get()) == SQLITE_ROW) {
      sql += " AND (started_at, run_id) < (?, ?)";
      values.push_back(start.Column(0));
    } else {
      sql += " AND run_id < ?";
    }
    values.push_back(query.after);
  }
  for (const auto& [key, value] : query.tags) {
    sql += " AND json_valid(report_json) AND json_extract(report_json, ?) = ?";
    values.push_back(absl::StrCat("$.spec.tags.\"", key, "\""));
    values.push_back(value);
  }
  // One more than the page: whether there is a next one.
  sql += absl::StrCat(" ORDER BY started_at DESC, run_id DESC LIMIT ", query.limit + 1);
  Statement stmt(db_, sql.c_str());
  if (!stmt.ok()) return SqliteError(db_, "prepare list");
  for (size_t i = 0; i < values.size(); ++i) stmt.Bind(static_cast<int>(i + 1), values[i]);
  RunPage page;
  int step;
  while ((step = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    if (page.runs.size() == query.limit) {
      page.next = page.runs.back().run_id();
      break;
    }
    page.runs.push_back(SummaryOf(stmt));
  }
  if (step != SQLITE_ROW && step != SQLITE_DONE) return SqliteError(db_, "list");
  return page;
}

}  // namespace churnlab
