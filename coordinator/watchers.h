// The callers following runs (the CLI's WatchRun streams, the dashboard's event stream), with a
// lock of their own: the coordinator calls them after its state lock is released, so a slow
// watcher never holds up an agent's telemetry.
#pragma once

#include <cstdint>
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

  // Follows the run `run_id`, or every run for "". Returns an id for Remove(), or -1 when
  // `max_run_watchers` already follow single runs (every-run watchers are the coordinator's own).
  int Add(std::string run_id, Watcher watcher, size_t max_run_watchers = SIZE_MAX) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!run_id.empty() && run_watchers_ >= max_run_watchers) return -1;
    run_watchers_ += run_id.empty() ? 0 : 1;
    int id = next_id_++;
    entries_[id] = Entry{std::move(run_id), std::move(watcher)};
    return id;
  }
  // After it returns, the watcher is never called again.
  void Remove(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    run_watchers_ -= it->second.run_id.empty() ? 0 : 1;
    entries_.erase(it);
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
      if (final && !every_run) {
        --run_watchers_;
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }

 private:
  struct Entry {
    std::string run_id;  // "" for every run
    Watcher watcher;
  };
  std::mutex mu_;
  std::map<int, Entry> entries_;
  size_t run_watchers_ = 0;  // entries_ that follow one run
  int next_id_ = 1;
};

}  // namespace churnlab
