// The callers following runs (the CLI's WatchRun streams, the dashboard's event stream), with a
// lock of their own: the coordinator calls them after its state lock is released, so a slow
// watcher never holds up an agent's telemetry.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "churnlab/v1/report.pb.h"

namespace churnlab {

class Watchers {
 public:
  // Update callbacks get the report so far; `final` on the last one.
  using Watcher = std::function<void(const v1::RunReport& report, bool final)>;

  // Follows the run `run_id`, or every run for "". Returns an id for Remove().
  int Add(std::string run_id, Watcher watcher) {
    std::lock_guard<std::mutex> lock(mu_);
    int id = next_id_++;
    entries_[id] = Entry{std::move(run_id), std::move(watcher)};
    return id;
  }
  // After it returns, the watcher is never called again.
  void Remove(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.erase(id);
  }
  // Calls the run's watchers and every-run watchers; a run's own watchers are dropped after
  // its final report. Watchers must not call Add or Remove.
  void Notify(const v1::RunReport& report, bool final) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      bool every_run = it->second.run_id.empty();
      if (!every_run && it->second.run_id != report.run_id()) {
        ++it;
        continue;
      }
      it->second.watcher(report, final);
      it = final && !every_run ? entries_.erase(it) : std::next(it);
    }
  }

 private:
  struct Entry {
    std::string run_id;  // "" for every run
    Watcher watcher;
  };
  std::mutex mu_;
  std::map<int, Entry> entries_;
  int next_id_ = 1;
};

}  // namespace churnlab
