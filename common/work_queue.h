// A few threads that run submitted calls in order, with a bounded queue: the JSON routes of the
// coordinator's HTTP side, its downloads, and its Control calls run on queues like this, so that
// the store's disk and a report's JSON never hold up an event loop or a thread that serves agents.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace churnlab {

class WorkQueue {
 public:
  WorkQueue(int threads, size_t max_queued);
  // Finishes the call each thread has in hand; the calls still queued are dropped (destroyed).
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // False (and `fn` dropped) when max_queued calls are already waiting.
  bool Submit(std::function<void()> fn);

 private:
  void Run();

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace churnlab
