// Task<T>: a lazy, move-only coroutine returning T. It starts when awaited; its result or
// exception goes to the awaiter; the awaiter's cancellation token passes down to it.
//
// Awaiting a task runs it inline until its first real suspension. If it finishes without
// suspending, the awaiter continues without any resume/transfer: a chain of millions of
// synchronously completing awaits uses constant stack even where g++ 12 does not turn
// symmetric transfer into a tail call (-O0, -O1, ASan; see DESIGN.md). Only a task that
// suspended and later finishes transfers to its awaiter, so the stack then grows with the
// depth of task nesting, never with the number of awaits.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "core/assert.h"
#include "core/cancel.h"

namespace uraft {

// State shared by every uraft coroutine promise: who to resume, which token cancels it.
class PromiseBase {
 public:
  CancelToken cancel_token() const noexcept { return token_; }
  void set_cancel_token(CancelToken token) noexcept { token_ = token; }

 protected:
  friend struct TaskFinalAwaiter;
  template <typename T>
  friend class Task;

  std::coroutine_handle<> continuation_;
  CancelToken token_;
  bool* finished_inline_ = nullptr;  // Set while the awaiter runs this task inline.
};

// The cancellation token of whatever coroutine is awaiting: uraft promises carry one,
// foreign coroutines have none (never cancelled).
template <typename Promise>
CancelToken token_of(std::coroutine_handle<Promise> h) noexcept {
  if constexpr (std::is_base_of_v<PromiseBase, Promise>) {
    return h.promise().cancel_token();
  } else {
    return CancelToken{};
  }
}

struct TaskFinalAwaiter {
  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    PromiseBase& p = h.promise();
    if (p.finished_inline_ != nullptr) {
      *p.finished_inline_ = true;  // The awaiter, still on the stack below us, continues.
      return std::noop_coroutine();
    }
    return p.continuation_;
  }
  void await_resume() const noexcept {}
};

template <typename T>
class TaskPromise : public PromiseBase {
 public:
  std::suspend_always initial_suspend() const noexcept { return {}; }
  TaskFinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  template <typename U>
  void return_value(U&& value) {
    value_.emplace(std::forward<U>(value));
  }

  T take() {
    if (exception_) std::rethrow_exception(exception_);
    URAFT_ASSERT(value_.has_value());
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
  std::exception_ptr exception_;
};

template <>
class TaskPromise<void> : public PromiseBase {
 public:
  std::suspend_always initial_suspend() const noexcept { return {}; }
  TaskFinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }
  void return_void() noexcept {}

  void take() {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  std::exception_ptr exception_;
};

template <typename T = void>
class [[nodiscard]] Task {
 public:
  struct promise_type : TaskPromise<T> {
    Task get_return_object() noexcept {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
  };
  using Handle = std::coroutine_handle<promise_type>;
  using value_type = T;

  Task() = default;
  Task(Task&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      destroy();
      h_ = std::exchange(other.h_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { destroy(); }

  bool valid() const noexcept { return h_ != nullptr; }
  bool done() const noexcept { return h_ && h_.done(); }

  class Awaiter {
   public:
    explicit Awaiter(Handle h) noexcept : h_(h) {}
    bool await_ready() const noexcept { return false; }

    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> awaiting) {
      PromiseBase& p = h_.promise();
      p.continuation_ = awaiting;
      p.token_ = token_of(awaiting);
      bool finished = false;
      p.finished_inline_ = &finished;
      h_.resume();
      if (finished) return false;  // Finished without suspending: continue the awaiter now.
      p.finished_inline_ = nullptr;
      return true;
    }

    T await_resume() { return h_.promise().take(); }

   private:
    Handle h_;
  };

  Awaiter operator co_await() && noexcept {
    URAFT_ASSERT(h_ != nullptr);
    return Awaiter(h_);
  }

  // For the loop and combinators: the raw handle, still owned by this Task.
  Handle handle() const noexcept { return h_; }

 private:
  explicit Task(Handle h) noexcept : h_(h) {}
  void destroy() noexcept {
    if (h_) h_.destroy();
    h_ = nullptr;
  }

  Handle h_ = nullptr;
};

}  // namespace uraft
