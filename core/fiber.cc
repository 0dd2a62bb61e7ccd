#include "core/fiber.h"

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <boost/context/stack_context.hpp>

#include "core/loop.h"
#include "core/scope.h"

// AddressSanitizer must be told about every stack switch, or it keeps checking against the
// wrong stack's bounds: false reports after an exception on a fiber (it "unpoisons" the
// wrong range) and stale fake frames with detect_stack_use_after_return.
#if defined(__SANITIZE_ADDRESS__)
#define URAFT_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define URAFT_FIBER_ASAN 1
#endif
#endif

#if defined(URAFT_FIBER_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace uraft {
namespace {

namespace ctx = boost::context;

// Thrown inside a parked fiber whose task is destroyed, to unwind its stack. Not a
// std::exception, so `catch (const std::exception&)` in user code lets it pass.
struct FiberUnwind {};

// Announces a switch to the stack [bottom, bottom + size). `fake_stack` keeps the leaving
// side's fake frames (nullptr: the leaving side is finished and ASan may free them).
void asan_start_switch([[maybe_unused]] void** fake_stack, [[maybe_unused]] const void* bottom,
                       [[maybe_unused]] std::size_t size) noexcept {
#if defined(URAFT_FIBER_ASAN)
  __sanitizer_start_switch_fiber(fake_stack, bottom, size);
#endif
}

// Completes a switch on the arriving side; reports the stack we came from.
void asan_finish_switch([[maybe_unused]] void* fake_stack,
                        [[maybe_unused]] const void** from_bottom,
                        [[maybe_unused]] std::size_t* from_size) noexcept {
#if defined(URAFT_FIBER_ASAN)
  __sanitizer_finish_switch_fiber(fake_stack, from_bottom, from_size);
#endif
}

// A protected_fixedsize_stack (guard page below the stack) that tells its owner where the
// stack is, and clears ASan's shadow before unmapping: frames that never returned (Boost's
// entry frame) leave poisoned redzones that would otherwise greet the next mapping there.
class GuardedStack {
 public:
  GuardedStack(std::size_t bytes, ctx::stack_context* out) : stack_(bytes), out_(out) {}

  ctx::stack_context allocate() {
    ctx::stack_context sctx = stack_.allocate();
    *out_ = sctx;
    return sctx;
  }
  void deallocate(ctx::stack_context& sctx) noexcept {
#if defined(URAFT_FIBER_ASAN)
    __asan_unpoison_memory_region(static_cast<char*>(sctx.sp) - sctx.size, sctx.size);
#endif
    stack_.deallocate(sctx);
  }

 private:
  ctx::protected_fixedsize_stack stack_;
  ctx::stack_context* out_;
};

}  // namespace

namespace detail {
namespace {

// One fiber: its stack and context, and the hand-over slot between its two sides. The loop
// side (run_on_fiber) calls resume(); the fiber side calls await(). Owned by run_on_fiber's
// frame, so it lives exactly as long as the driving task.
class Fiber {
 public:
  Fiber(FiberEntry entry, void* arg, std::size_t stack_bytes, CancelToken token)
      : entry_(entry), arg_(arg), token_(token) {
    URAFT_ASSERT(stack_bytes >= kFiberStackBytesMin);
    URAFT_ASSERT(stack_bytes <= kFiberStackBytesMax);
    context_ = ctx::fiber(std::allocator_arg, GuardedStack(stack_bytes, &stack_),
                          [this](ctx::fiber&& caller) { return main(std::move(caller)); });
    URAFT_ASSERT(stack_.sp != nullptr);
  }
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  ~Fiber() {
    if (context_) {  // Parked in await(): unwind its stack so its destructors run.
      unwinding_ = true;
      resume();
    }
    URAFT_ASSERT(finished_);
    URAFT_ASSERT(!context_);
  }

  static Fiber* current() noexcept { return current_; }

  // Loop side: runs the fiber until it parks (true: take_pending() has a task for us) or
  // finishes (false).
  bool resume() {
    URAFT_ASSERT(!finished_);
    URAFT_ASSERT(current_ != this);
    Fiber* const previous = current_;
    current_ = this;
    asan_start_switch(&caller_fake_stack_, static_cast<char*>(stack_.sp) - stack_.size,
                      stack_.size);
    context_ = std::move(context_).resume();
    asan_finish_switch(caller_fake_stack_, nullptr, nullptr);
    current_ = previous;
    URAFT_ASSERT(finished_ == !context_);
    if (!finished_) URAFT_ASSERT(pending_.valid());  // It parked: there is a task to run.
    return !finished_;
  }

  Task<void> take_pending() noexcept { return std::move(pending_); }
  void set_await_error(std::exception_ptr error) noexcept { await_error_ = std::move(error); }

  // Fiber side: hands `task` to the loop side, parks until it is done, rethrows its error.
  void await(Task<void> task) {
    if (unwinding_) throw FiberUnwind{};
    URAFT_ASSERT(task.valid());
    // A switch inside a handler or during unwinding would interleave this fiber's exception
    // state with the loop's (libstdc++ keeps one caught-exception stack per thread).
    URAFT_ASSERT(std::uncaught_exceptions() == 0);
    URAFT_ASSERT(std::current_exception() == nullptr);
    pending_ = std::move(task);
    park();
    if (unwinding_) throw FiberUnwind{};
    if (std::exception_ptr error = std::exchange(await_error_, nullptr))
      std::rethrow_exception(error);
  }

  CancelToken token() const noexcept { return token_; }

 private:
  // The fiber's first frame: Boost.Context calls it on the new stack with the loop side's
  // context; what it returns is where the fiber goes when it ends.
  ctx::fiber main(ctx::fiber&& caller) {
    asan_finish_switch(nullptr, &caller_stack_bottom_, &caller_stack_size_);
    caller_ = std::move(caller);
    if (!unwinding_) entry_(arg_);  // Never started (destroyed at once): nothing to unwind.
    finished_ = true;
    // Leaving for good: nullptr lets ASan drop this stack's fake frames. Boost then frees
    // the stack from the loop side (GuardedStack::deallocate).
    asan_start_switch(nullptr, caller_stack_bottom_, caller_stack_size_);
    return std::move(caller_);
  }

  void park() {
    asan_start_switch(&fiber_fake_stack_, caller_stack_bottom_, caller_stack_size_);
    caller_ = std::move(caller_).resume();
    asan_finish_switch(fiber_fake_stack_, &caller_stack_bottom_, &caller_stack_size_);
  }

  static thread_local Fiber* current_;

  FiberEntry entry_;
  void* arg_;
  CancelToken token_;
  ctx::stack_context stack_;     // Set by GuardedStack::allocate; freed by Boost at the end.
  ctx::fiber context_;           // The fiber while parked (loop side holds it); empty after.
  ctx::fiber caller_;            // The loop side while the fiber runs (fiber side holds it).
  Task<void> pending_;           // Written by the fiber side, taken by the loop side.
  std::exception_ptr await_error_;
  bool finished_ = false;
  bool unwinding_ = false;
  // ASan bookkeeping (unused without it): each side's fake stack, and the loop side's
  // stack bounds as reported on arrival in the fiber.
  void* caller_fake_stack_ = nullptr;
  void* fiber_fake_stack_ = nullptr;
  const void* caller_stack_bottom_ = nullptr;
  std::size_t caller_stack_size_ = 0;
};

thread_local Fiber* Fiber::current_ = nullptr;

Task<void> yield_task() { co_await yield(); }

}  // namespace

Task<void> run_on_fiber(FiberEntry entry, void* arg, std::size_t stack_bytes) {
  const CancelToken token = co_await current_token();
  Fiber fiber(entry, arg, stack_bytes, token);
  while (fiber.resume()) {
    Task<void> pending = fiber.take_pending();
    try {
      co_await std::move(pending);
    } catch (...) {
      fiber.set_await_error(std::current_exception());
    }
  }
}

void await_on_loop(Task<void> task) {
  Fiber* fiber = Fiber::current();
  URAFT_ASSERT(fiber != nullptr);  // await() is for fibers; a coroutine uses co_await.
  fiber->await(std::move(task));
}

}  // namespace detail

bool in_fiber() noexcept { return detail::Fiber::current() != nullptr; }

CancelToken fiber_cancel_token() noexcept {
  detail::Fiber* fiber = detail::Fiber::current();
  URAFT_ASSERT(fiber != nullptr);
  return fiber->token();
}

void await(Task<void> task) { detail::await_on_loop(std::move(task)); }

void fiber_yield() { detail::await_on_loop(detail::yield_task()); }

}  // namespace uraft
