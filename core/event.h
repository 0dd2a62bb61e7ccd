// Event: a flag tasks can wait for. set() wakes every waiter; reset() clears the flag.
#pragma once

#include "core/wait_list.h"

namespace uraft {

class Event {
 public:
  bool is_set() const noexcept { return set_; }
  void set() noexcept {
    set_ = true;
    waiters_.wake_all();
  }
  void reset() noexcept { set_ = false; }

  class [[nodiscard]] Awaiter : WaitNode {
   public:
    Awaiter(Event& event, bool cancellable) : event_(event), cancellable_(cancellable) {}
    bool await_ready() const noexcept { return event_.set_; }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      // A type-erased handle carries no token: that is what makes a wait uncancellable.
      if (!cancellable_) return enqueue(event_.waiters_, std::coroutine_handle<>(h));
      return enqueue(event_.waiters_, h);
    }
    void await_resume() { finish(); }

   private:
    Event& event_;
    bool cancellable_;
  };

  // Completes when the event is set (at once if it is). Cancellable.
  Awaiter wait() noexcept { return Awaiter(*this, true); }
  // The same, but a cancelled task keeps waiting: for joins that must not be abandoned.
  Awaiter wait_uncancellable() noexcept { return Awaiter(*this, false); }

 private:
  bool set_ = false;
  WaitList waiters_;
};

}  // namespace uraft
