// Semaphore: counted permits with FIFO waiters; a released permit goes to the oldest waiter.
#pragma once

#include <cstddef>

#include "core/wait_list.h"

namespace uraft {

class Semaphore {
 public:
  explicit Semaphore(std::size_t permits) : permits_(permits) {}

  std::size_t available() const noexcept { return permits_; }

  bool try_acquire() noexcept {
    if (permits_ == 0 || !waiters_.empty()) return false;
    --permits_;
    return true;
  }

  void release(std::size_t n = 1) noexcept {
    for (; n > 0; --n) {
      if (WaitNode* node = waiters_.front()) {
        waiters_.wake(*node);  // The permit passes straight to the waiter.
      } else {
        ++permits_;
      }
    }
  }

  class [[nodiscard]] Awaiter : WaitNode {
   public:
    explicit Awaiter(Semaphore& sem) : sem_(sem) {}
    bool await_ready() noexcept { return sem_.try_acquire(); }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      return enqueue(sem_.waiters_, h);
    }
    void await_resume() { finish(); }

   private:
    Semaphore& sem_;
  };

  // Takes one permit, waiting for it if none is free. Cancellable.
  Awaiter acquire() noexcept { return Awaiter(*this); }

 private:
  std::size_t permits_;
  WaitList waiters_;
};

}  // namespace uraft
