// Watchers: who hears a run's updates (its own watchers and every-run ones), the end of a run's
// own watchers after its final report, and Remove() as a hard stop, also against a Notify().
#include "coordinator/watchers.h"

#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace churnlab {
namespace {

v1::RunReport Report(const std::string& run_id) {
  v1::RunReport report;
  report.set_run_id(run_id);
  return report;
}

// What one watcher heard: (run id, final) per call.
struct Heard {
  std::vector<std::pair<std::string, bool>> calls;
  Watchers::Watcher Watcher() {
    return [this](const v1::RunReport& report, bool final) {
      calls.emplace_back(report.run_id(), final);
    };
  }
};

using Calls = std::vector<std::pair<std::string, bool>>;

TEST(WatchersTest, ARunsWatcherHearsThatRunOnly) {
  Watchers watchers;
  Heard one, two;
  watchers.Add("r-1", one.Watcher());
  watchers.Add("r-2", two.Watcher());
  watchers.Notify(Report("r-1"), false);
  watchers.Notify(Report("r-1"), false);
  watchers.Notify(Report("r-3"), false);
  EXPECT_EQ(one.calls, (Calls{{"r-1", false}, {"r-1", false}}));
  EXPECT_TRUE(two.calls.empty());
}

TEST(WatchersTest, AnEveryRunWatcherHearsEveryRunAndOutlivesTheirEnds) {
  Watchers watchers;
  Heard all;
  watchers.Add("", all.Watcher());
  watchers.Notify(Report("r-1"), false);
  watchers.Notify(Report("r-1"), true);
  watchers.Notify(Report("r-2"), true);
  watchers.Notify(Report("r-3"), false);
  EXPECT_EQ(all.calls, (Calls{{"r-1", false}, {"r-1", true}, {"r-2", true}, {"r-3", false}}));
}

TEST(WatchersTest, ARunsWatcherIsDroppedAfterTheFinalReport) {
  Watchers watchers;
  Heard one, other;
  int id = watchers.Add("r-1", one.Watcher());
  watchers.Add("r-2", other.Watcher());
  watchers.Notify(Report("r-1"), false);
  watchers.Notify(Report("r-1"), true);
  watchers.Notify(Report("r-1"), true);  // a second final is not heard either
  watchers.Notify(Report("r-1"), false);
  EXPECT_EQ(one.calls, (Calls{{"r-1", false}, {"r-1", true}}));
  // Another run's watcher is kept through r-1's end.
  watchers.Notify(Report("r-2"), false);
  EXPECT_EQ(other.calls, (Calls{{"r-2", false}}));
  watchers.Remove(id);  // already gone: harmless
}

TEST(WatchersTest, SeveralWatchersOfOneRunAllHearItInTheOrderAdded) {
  Watchers watchers;
  std::vector<int> order;
  watchers.Add("r-1", [&](const v1::RunReport&, bool) { order.push_back(1); });
  watchers.Add("", [&](const v1::RunReport&, bool) { order.push_back(2); });
  watchers.Add("r-1", [&](const v1::RunReport&, bool) { order.push_back(3); });
  watchers.Notify(Report("r-1"), true);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  order.clear();
  watchers.Notify(Report("r-1"), false);
  EXPECT_EQ(order, (std::vector<int>{2}));
}

TEST(WatchersTest, RemoveStopsOneWatcherAndNoOther) {
  Watchers watchers;
  Heard a, b, all;
  int id_a = watchers.Add("r-1", a.Watcher());
  int id_b = watchers.Add("r-1", b.Watcher());
  int id_all = watchers.Add("", all.Watcher());
  EXPECT_NE(id_a, id_b);
  EXPECT_NE(id_b, id_all);
  EXPECT_NE(id_a, id_all);
  watchers.Remove(id_a);
  watchers.Remove(id_all);
  watchers.Remove(12345);  // unknown: nothing happens
  watchers.Notify(Report("r-1"), false);
  EXPECT_TRUE(a.calls.empty());
  EXPECT_TRUE(all.calls.empty());
  EXPECT_EQ(b.calls, (Calls{{"r-1", false}}));
}

TEST(WatchersTest, IdsAreNotReusedAfterRemove) {
  Watchers watchers;
  int first = watchers.Add("r-1", [](const v1::RunReport&, bool) {});
  watchers.Remove(first);
  Heard later;
  int second = watchers.Add("r-1", later.Watcher());
  EXPECT_NE(first, second);
  watchers.Remove(first);  // a stale id must not remove the newer watcher
  watchers.Notify(Report("r-1"), false);
  EXPECT_EQ(later.calls.size(), 1u);
}

TEST(WatchersTest, NoCallAfterRemoveReturnsWhileAnotherThreadNotifies) {
  Watchers watchers;
  std::atomic<bool> removed{false};
  std::atomic<int> calls{0};
  std::atomic<int> late_calls{0};
  int id = watchers.Add("", [&](const v1::RunReport&, bool) {
    calls.fetch_add(1);
    if (removed.load()) late_calls.fetch_add(1);
  });
  std::atomic<bool> stop{false};
  std::thread notifier([&] {
    const v1::RunReport report = Report("r-1");
    while (!stop.load()) watchers.Notify(report, false);
  });
  // Remove only once the watcher is known to be in use; the wait is bounded by the loop count.
  for (int i = 0; i < 10'000'000 && calls.load() < 100; ++i) std::this_thread::yield();
  watchers.Remove(id);
  removed.store(true);
  int calls_at_remove = calls.load();
  for (int i = 0; i < 1000; ++i) std::this_thread::yield();  // let the notifier go round
  stop.store(true);
  notifier.join();
  EXPECT_GE(calls_at_remove, 100);
  EXPECT_EQ(calls.load(), calls_at_remove);
  EXPECT_EQ(late_calls.load(), 0);
}

}  // namespace
}  // namespace churnlab
