// The SQLite run store on its own: what goes in comes back, a restart marks runs in flight
// interrupted, and rows written before choices were enums still read.
#include "coordinator/run_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <map>
#include <string>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace churnlab {
namespace {

// Every run of `store` with `tags`, in one page.
absl::StatusOr<std::vector<v1::RunSummary>> ListAll(RunStore& store, RunTags tags = {}) {
  RunQuery query;
  query.tags = std::move(tags);
  query.limit = kMaxRunsPage;
  absl::StatusOr<RunPage> page = store.List(query);
  if (!page.ok()) return page.status();
  return std::move(page->runs);
}

class RunStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/churnlab-store-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/runs.db";
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  static v1::RunReport Report(const std::string& id, v1::RunReport::State state) {
    v1::RunReport report;
    report.set_run_id(id);
    report.set_state(state);
    report.set_started_at("2026-12-01T10:00:00Z");
    report.mutable_spec()->set_name("churn");
    report.mutable_spec()->set_close_policy(v1::CLOSE_POLICY_SERVER_FIN);
    report.mutable_totals()->set_succeeded(1234);
    return report;
  }

  // Writes a row as an older build did (`insert`, raw SQL), then loads `id` from a store opened
  // afresh.
  absl::StatusOr<v1::RunReport> LoadRawRow(const char* insert, const std::string& id) {
    {
      absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(path_);
      if (!store.ok()) return store.status();
    }
    sqlite3* db = nullptr;
    if (sqlite3_open(path_.c_str(), &db) != SQLITE_OK) return absl::InternalError("open");
    int rc = sqlite3_exec(db, insert, nullptr, nullptr, nullptr);
    sqlite3_close(db);
    if (rc != SQLITE_OK) return absl::InternalError("insert");
    absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(path_);
    if (!store.ok()) return store.status();
    return (*store)->Load(id);
  }

  std::string dir_;
  std::string path_;
};

TEST_F(RunStoreTest, KeepsReportsAndPointsInOrder) {
  absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Save(Report("r-1", v1::RunReport::STATE_COMPLETED)).ok());
  for (int seq : {0, 1, 2}) {
    v1::SeriesPoint point;
    point.set_t_s(seq + 1);
    point.set_succeeded(10 * seq);
    ASSERT_TRUE((*store)->AppendPoint("r-1", seq, point).ok());
  }
  absl::StatusOr<v1::RunReport> back = (*store)->Load("r-1");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->totals().succeeded(), 1234);
  EXPECT_EQ(back->spec().close_policy(), v1::CLOSE_POLICY_SERVER_FIN);
  absl::StatusOr<std::vector<v1::SeriesPoint>> points = (*store)->LoadPoints("r-1");
  ASSERT_TRUE(points.ok());
  ASSERT_EQ(points->size(), 3u);
  EXPECT_EQ((*points)[2].succeeded(), 20);
  EXPECT_EQ((*store)->Load("r-none").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RunStoreTest, ARestartMarksRunsInFlightInterrupted) {
  {
    absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(path_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Save(Report("r-old", v1::RunReport::STATE_COMPLETED)).ok());
    ASSERT_TRUE((*store)->Save(Report("r-new", v1::RunReport::STATE_RUNNING)).ok());
  }
  absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(path_);
  ASSERT_TRUE(store.ok());
  absl::StatusOr<std::vector<v1::RunSummary>> runs = ListAll(**store);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  for (const v1::RunSummary& run : *runs) {
    EXPECT_EQ(run.state(), run.run_id() == "r-new" ? v1::RunReport::STATE_INTERRUPTED
                                                   : v1::RunReport::STATE_COMPLETED);
    // The listing's verdict: an interrupted run failed (the old run keeps the one it had).
    if (run.run_id() == "r-new") EXPECT_EQ(run.verdict(), v1::RunReport::VERDICT_FAIL);
  }
  EXPECT_EQ((*store)->Load("r-new")->state(), v1::RunReport::STATE_INTERRUPTED);
}

// A run a store marked interrupted before interrupted runs had a verdict (its column empty) is
// listed as failed once the store opens again.
TEST_F(RunStoreTest, AnInterruptedRunWithoutAVerdictIsListedFailed) {
  ASSERT_TRUE(LoadRawRow("INSERT INTO runs VALUES ('r-cut', 'cut', 'interrupted', "
                         "'2026-12-01T00:00:00Z', '', '{\"run_id\":\"r-cut\"}')",
                         "r-cut")
                  .ok());
  absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(path_);
  ASSERT_TRUE(store.ok());
  absl::StatusOr<std::vector<v1::RunSummary>> runs = ListAll(**store);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].state(), v1::RunReport::STATE_INTERRUPTED);
  EXPECT_EQ((*runs)[0].verdict(), v1::RunReport::VERDICT_FAIL);
}

// Rows are JSON as users read it; one stored when choices were strings reads the same.
TEST_F(RunStoreTest, ReadsRowsWithChoicesAsWordsAndCountsAsNumbers) {
  absl::StatusOr<v1::RunReport> old = LoadRawRow(
      "INSERT INTO runs VALUES ('r-2025', 'old', 'completed', '2025-01-01T00:00:00Z', 'pass', "
      "'{\"run_id\":\"r-2025\",\"state\":\"completed\",\"spec\":{\"close_policy\":\"rst\","
      "\"bind_mode\":\"bind\",\"protocol\":\"http\"},\"totals\":{\"failed\":\"7\"}}')",
      "r-2025");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->spec().close_policy(), v1::CLOSE_POLICY_RST);
  EXPECT_EQ(old->spec().bind_mode(), v1::BIND_MODE_BIND);
  EXPECT_EQ(old->spec().protocol(), v1::PROTOCOL_HTTP);
  EXPECT_EQ(old->totals().failed(), 7);
}

// A report stored before tcp_tw_reuse was modelled by its delay named the limit
// PORT_LIMIT_LIFTED_BY_REUSE: it still reads, as the same value.
TEST_F(RunStoreTest, ReadsTheOldNameOfTheReuseLimit) {
  absl::StatusOr<v1::RunReport> old = LoadRawRow(
      "INSERT INTO runs VALUES ('r-2026', 'old', 'completed', '2026-01-01T00:00:00Z', 'pass', "
      "'{\"run_id\":\"r-2026\",\"state\":\"completed\",\"tuple_budget\":{\"sources\":[{"
      "\"ip\":\"127.0.0.2\",\"ports\":\"1000\",\"limit\":\"PORT_LIMIT_LIFTED_BY_REUSE\"}]}}')",
      "r-2026");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->tuple_budget().sources(0).limit(), v1::PORT_LIMIT_TW_REUSE);
}

// A report protobuf cannot write as JSON (a duration past protobuf's 10,000 years) is refused,
// not stored empty; and a row that is no JSON is listed with its problem, never the end of the
// listing (json_extract() on it failed the whole query, and every run vanished from the lists).
TEST_F(RunStoreTest, NothingUnreadableIsStoredAndABadRowHidesNoOther) {
  absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  v1::RunReport huge = Report("r-huge", v1::RunReport::STATE_RUNNING);
  huge.mutable_spec()->mutable_io_timeout()->set_seconds(400'000'000'000);
  absl::Status saved = (*store)->Save(huge);
  EXPECT_EQ(saved.code(), absl::StatusCode::kInvalidArgument) << saved;
  EXPECT_NE(saved.message().find("cannot be written as JSON"), absl::string_view::npos) << saved;
  EXPECT_EQ((*store)->Load("r-huge").status().code(), absl::StatusCode::kNotFound);
  v1::SeriesPoint point;
  EXPECT_TRUE((*store)->AppendPoint("r-1", 0, point).ok());

  ASSERT_TRUE((*store)->Save(Report("r-1", v1::RunReport::STATE_COMPLETED)).ok());
  store->reset();
  absl::StatusOr<v1::RunReport> bad = LoadRawRow(
      "INSERT INTO runs VALUES ('r-bad', 'bad', 'completed', '2026-02-01T00:00:00Z', 'pass', "
      "'not json')",
      "r-bad");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  store = RunStore::Open(path_);
  ASSERT_TRUE(store.ok());
  absl::StatusOr<std::vector<v1::RunSummary>> all = ListAll(**store);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  for (const v1::RunSummary& s : *all) {
    EXPECT_EQ(s.problem().empty(), s.run_id() == "r-1") << s.run_id() << ": " << s.problem();
  }
  absl::StatusOr<std::vector<v1::RunSummary>> tagged = ListAll(**store, {{"build", "1"}});
  ASSERT_TRUE(tagged.ok()) << tagged.status();
  EXPECT_TRUE(tagged->empty());
}

TEST_F(RunStoreTest, ListsRunsWithTheirTagsAndFindsThemByTag) {
  absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  v1::RunReport a = Report("r-1", v1::RunReport::STATE_COMPLETED);
  (*a.mutable_spec()->mutable_tags())["build"] = "1234";
  (*a.mutable_spec()->mutable_tags())["kernel"] = "6.1";
  v1::RunReport b = Report("r-2", v1::RunReport::STATE_COMPLETED);
  (*b.mutable_spec()->mutable_tags())["build"] = "1235";
  ASSERT_TRUE((*store)->Save(a).ok());
  ASSERT_TRUE((*store)->Save(b).ok());
  ASSERT_TRUE((*store)->Save(Report("r-3", v1::RunReport::STATE_COMPLETED)).ok());

  absl::StatusOr<std::vector<v1::RunSummary>> all = ListAll(**store);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  std::map<std::string, const v1::RunSummary*> by_id;
  for (const v1::RunSummary& s : *all) by_id[s.run_id()] = &s;
  EXPECT_EQ(by_id["r-1"]->tags().at("kernel"), "6.1");
  EXPECT_EQ(by_id["r-2"]->tags().at("build"), "1235");
  EXPECT_TRUE(by_id["r-3"]->tags().empty());

  absl::StatusOr<std::vector<v1::RunSummary>> found = ListAll(**store, {{"build", "1234"}});
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].run_id(), "r-1");
  found = ListAll(**store, {{"build", "1234"}, {"kernel", "6.2"}});
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
  found = ListAll(**store, {{"nosuch", ""}});
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());

  EXPECT_TRUE(HasTags(a.spec(), {{"kernel", "6.1"}}));
  EXPECT_FALSE(HasTags(b.spec(), {{"kernel", "6.1"}}));
}

// Pages: newest first by start, each after the previous page's last run, the state filter, and
// a bad query named.
TEST_F(RunStoreTest, ListsAPageAtATimeAfterTheLastRunOfThePreviousOne) {
  absl::StatusOr<std::unique_ptr<RunStore>> store = RunStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  for (int i = 0; i < 25; ++i) {
    v1::RunReport r =
        Report(absl::StrFormat("r-%02d", i),
               i % 5 == 0 ? v1::RunReport::STATE_CANCELLED : v1::RunReport::STATE_COMPLETED);
    r.set_started_at(absl::StrFormat("2026-12-06T10:%02d:00Z", i));
    ASSERT_TRUE((*store)->Save(r).ok());
  }
  RunQuery query;
  query.limit = 10;
  std::vector<std::string> seen;
  int pages = 0;
  do {
    absl::StatusOr<RunPage> page = (*store)->List(query);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::RunSummary& s : page->runs) seen.push_back(s.run_id());
    query.after = page->next;
    ++pages;
  } while (!query.after.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "r-24");
  EXPECT_EQ(seen[10], "r-14");
  EXPECT_EQ(seen.back(), "r-00");
  query = RunQuery{};
  query.state = v1::RunReport::STATE_CANCELLED;
  query.limit = 5;
  absl::StatusOr<RunPage> cancelled = (*store)->List(query);
  ASSERT_TRUE(cancelled.ok());
  ASSERT_EQ(cancelled->runs.size(), 5u);
  EXPECT_EQ(cancelled->runs[0].run_id(), "r-20");
  EXPECT_EQ(cancelled->next, "");  // exactly a page: no next one
  // A run the store does not hold is placed by its id.
  query = RunQuery{};
  query.after = "r-12x";
  EXPECT_EQ((*store)->List(query)->runs[0].run_id(), "r-12");

  v1::ListRunsRequest request;
  request.set_limit(1001);
  EXPECT_NE(RunQueryOf(request).status().message().find("limit: 1001 is not in 1..1000"),
            std::string::npos);
  request.set_limit(0);
  EXPECT_EQ(RunQueryOf(request)->limit, 100u);
  request.set_after("r-1; DROP TABLE runs");
  EXPECT_NE(RunQueryOf(request).status().message().find("after: not a run id"), std::string::npos);
}

}  // namespace
}  // namespace churnlab
