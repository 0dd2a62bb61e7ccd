// Cross-thread submission: post(fn) from any thread runs fn on the loop's thread in a later
// turn. This is the one place in core/ with a lock: a mutex-protected vector of functions
// and an eventfd the loop keeps a read armed on, so a post wakes a loop blocked in the kernel.
#pragma once

#include <functional>
#include <mutex>
#include <vector>

#include "core/cancel.h"
#include "core/loop.h"

namespace uraft {

class PostQueue {
 public:
  explicit PostQueue(Loop& loop);
  PostQueue(const PostQueue&) = delete;
  PostQueue& operator=(const PostQueue&) = delete;
  ~PostQueue();

  // Thread-safe. `fn` runs on the loop's thread, in posting order.
  void post(std::function<void()> fn);

  // The listener's read keeps the loop alive (it is I/O in flight); nothing else does.
  bool keeps_alive() const noexcept { return false; }

 private:
  static Detached listen(PostQueue* self);
  void run_posted();

  Loop& loop_;
  int event_fd_ = -1;
  CancelSource stop_;
  bool listening_ = false;

  std::mutex mutex_;                          // Guards posted_ and wake_pending_.
  std::vector<std::function<void()>> posted_;
  bool wake_pending_ = false;
};

// Convenience: loop.post_queue().post(fn). Call loop.post_queue() once on the loop's thread
// before handing the loop to other threads.
inline void post(Loop& loop, std::function<void()> fn) { loop.post_queue().post(std::move(fn)); }

}  // namespace uraft
