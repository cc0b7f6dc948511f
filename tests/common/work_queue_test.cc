#include "common/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace churnlab {
namespace {

// One thread runs the calls in order; past max_queued waiting, Submit refuses.
TEST(WorkQueueTest, RunsInOrderAndRefusesPastItsQueue) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  std::vector<int> order;
  std::atomic<int> done{0};
  {
    WorkQueue queue(1, 2);
    ASSERT_TRUE(queue.Submit([&] {
      started.set_value();
      released.wait();  // holds the one thread
    }));
    started.get_future().wait();
    EXPECT_TRUE(queue.Submit([&] { order.push_back(1), ++done; }));
    EXPECT_TRUE(queue.Submit([&] { order.push_back(2), ++done; }));
    EXPECT_FALSE(queue.Submit([&] { order.push_back(3), ++done; }));  // 2 already wait
    release.set_value();
    while (done.load() < 2) std::this_thread::yield();
  }
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace churnlab
