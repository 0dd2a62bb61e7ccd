// Fibers: blocking-style functions running on the loop, each on its own stack (Boost.Context),
// like Seastar's seastar::thread. run_fiber(fn) is a Task; inside fn, await(task) parks the
// fiber, runs the task as a coroutine on the loop, and resumes the fiber with its result.
//
// Stack discipline: a fiber is only ever entered from the loop's side (the task driving it)
// and only ever leaves back to it, so coroutines always run on the loop's stack and a fiber's
// stack holds nothing but the fiber's own frames. Boost.Context and the AddressSanitizer
// stack-switch annotations stay inside fiber.cc: this header needs neither.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "core/assert.h"
#include "core/cancel.h"
#include "core/task.h"

namespace uraft {

// Seastar's default thread stack. It fits ordinary blocking-style code with room for
// AddressSanitizer's two-to-three times larger frames, and a thousand fibers cost only
// address space: pages are committed when touched. Overflow hits a guard page (SIGSEGV)
// instead of silently overwriting the heap.
constexpr std::size_t kFiberStackBytesDefault = 128 * 1024;
// Below this, one libc call with a formatting buffer (or one ASan-instrumented frame chain)
// can overflow; above the max, the size is almost certainly a unit mistake.
constexpr std::size_t kFiberStackBytesMin = 16 * 1024;
constexpr std::size_t kFiberStackBytesMax = 256 * 1024 * 1024;
static_assert(kFiberStackBytesMin <= kFiberStackBytesDefault);
static_assert(kFiberStackBytesDefault <= kFiberStackBytesMax);

// True while running on a fiber's stack (inside run_fiber's function).
bool in_fiber() noexcept;

// Inside a fiber: the cancellation token of the task that awaits the fiber's run_fiber().
CancelToken fiber_cancel_token() noexcept;

namespace detail {

// Runs on the fiber's stack; must not throw (FiberBody catches everything).
using FiberEntry = void (*)(void* arg) noexcept;

// The driving task: creates the fiber, switches into it, and co_awaits on its behalf every
// task it hands over with await(), until `entry` returns. Completes normally unless the
// stack cannot be mapped (std::bad_alloc); `entry` keeps fn's outcome itself.
Task<void> run_on_fiber(FiberEntry entry, void* arg, std::size_t stack_bytes);

// Fiber side of await(): parks the fiber until the loop has run `task`, then rethrows the
// task's exception, if any.
void await_on_loop(Task<void> task);

// The function and its outcome, owned by run_fiber's frame; the fiber writes the outcome.
template <typename F>
class FiberBody {
 public:
  using Result = std::invoke_result_t<F&&>;
  static_assert(!std::is_reference_v<Result>, "a fiber returns by value, as Task<T> does");

  explicit FiberBody(F fn) : fn_(std::move(fn)) {}

  static void run(void* self) noexcept { static_cast<FiberBody*>(self)->invoke(); }

  Result take() {
    if (error_) std::rethrow_exception(error_);
    URAFT_ASSERT(value_.has_value());
    if constexpr (std::is_void_v<Result>) {
      return;
    } else {
      return std::move(*value_);
    }
  }

 private:
  struct Nothing {};
  using Stored = std::conditional_t<std::is_void_v<Result>, Nothing, Result>;

  void invoke() noexcept {
    try {
      if constexpr (std::is_void_v<Result>) {
        std::invoke(std::move(fn_));
        value_.emplace();
      } else {
        value_.emplace(std::invoke(std::move(fn_)));
      }
    } catch (...) {
      error_ = std::current_exception();
    }
  }

  F fn_;
  std::optional<Stored> value_;
  std::exception_ptr error_;
};

// Awaits `task` on the loop and leaves its value in `*out` (the fiber's stack owns `out`,
// and the fiber stays parked until this finishes).
template <typename T>
Task<void> store_into(Task<T> task, std::optional<T>* out) {
  out->emplace(co_await std::move(task));
}

}  // namespace detail

// Runs `fn()` on its own stack of `stack_bytes` on the current loop. The task completes with
// fn's result or rethrows its exception. Like any task it starts when awaited and runs
// inline until fn first calls await(); fn's awaits inherit this task's cancellation token.
// If the task is destroyed while fn is parked in await() (a deadlocked run torn down), the
// fiber's stack is unwound: await() throws an internal exception that is not a
// std::exception, and fn's destructors run. Such destructors must not await.
template <typename F>
Task<std::invoke_result_t<F>> run_fiber(F fn, std::size_t stack_bytes = kFiberStackBytesDefault) {
  detail::FiberBody<F> body(std::move(fn));
  co_await detail::run_on_fiber(&detail::FiberBody<F>::run, &body, stack_bytes);
  co_return body.take();
}

// Inside a fiber only: runs `task` on the loop (a coroutine, with the fiber's cancellation
// token) while the fiber is parked, then returns its result or rethrows its exception
// (Cancelled included). As with co_await, not inside a catch handler and not from a
// destructor run by stack unwinding.
template <typename T>
T await(Task<T> task) {
  std::optional<T> value;
  detail::await_on_loop(detail::store_into(std::move(task), &value));
  URAFT_ASSERT(value.has_value());
  return std::move(*value);
}
void await(Task<void> task);

// Inside a fiber only: lets every other ready task run, then continues (core's yield()).
// A cancellation point: throws Cancelled if the fiber's task is cancelled.
void fiber_yield();

}  // namespace uraft
