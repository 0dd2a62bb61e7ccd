// Loop: the single-threaded scheduler every uraft task runs on. One turn runs the ready
// coroutines, then polls the backend (blocking only when nothing is ready, until the earliest
// timer), then moves expired timers to the ready queue. The same code runs on io_uring or on
// virtual time; on virtual time a run is a function of the seed, summarized by trace_hash().
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/assert.h"
#include "core/backend.h"
#include "core/cancel.h"
#include "core/rng.h"
#include "core/task.h"
#include "core/clock.h"
#include "core/ring_queue.h"
#include "core/timer_heap.h"

namespace uraft {

class PostQueue;

// A coroutine that starts when scheduled and frees itself when it ends. Its body must catch
// everything: the loop's root task and Scope's spawned tasks are written that way.
struct Detached {
  struct promise_type : PromiseBase {
    Detached get_return_object() noexcept {
      return Detached{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    [[noreturn]] void unhandled_exception() const noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

// Thrown by run() when the main task waits for something that can never happen.
struct Deadlock : std::logic_error {
  using std::logic_error::logic_error;
};

struct LoopOptions {
  std::uint64_t seed = 1;           // Seeds rng(); a simulated run is a function of it.
  unsigned uring_entries = 256;     // Submission queue size of the io_uring backend.
  unsigned yield_budget = 256;      // Resumptions a task may run before maybe_yield() yields.
};

template <typename T>
class Started;

class Loop {
 public:
  // A loop on virtual time (SimBackend).
  static std::unique_ptr<Loop> simulated(LoopOptions options = {});
  // A loop on io_uring. Throws std::runtime_error with a plain explanation if io_uring
  // cannot be set up (old kernel, seccomp in a container, RLIMIT_MEMLOCK).
  static std::unique_ptr<Loop> uring(LoopOptions options = {});

  Loop(std::unique_ptr<Backend> backend, LoopOptions options);
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  ~Loop();

  // The loop running on this thread (inside run()/run_once()). Asserts there is one.
  static Loop& current() noexcept {
    URAFT_ASSERT(current_ != nullptr);
    return *current_;
  }
  static Loop* current_or_null() noexcept { return current_; }

  TimePoint now() const noexcept { return backend_->now(); }
  Rng& rng() noexcept { return rng_; }
  std::uint64_t seed() const noexcept { return options_.seed; }
  Backend& backend() noexcept { return *backend_; }
  UringBackend* uring_backend() noexcept { return uring_; }

  // Runs `main` to completion and returns its result (or rethrows its exception).
  template <typename T>
  T run(Task<T> main);

  // Queues `main` to start in the next turn and returns its handle, without driving the
  // loop: for hosts that call run_once() themselves. The task runs with stop_token().
  template <typename T>
  Started<T> start(Task<T> main);

  // One turn. Without `block` it never waits (for embedding in a host loop). Returns
  // whether anything is left to do (ready work, timers, I/O in flight, remote handles).
  bool run_once(bool block);

  // For a host loop: the fd to poll for readability (the ring fd; -1 on virtual time), and
  // how long the host may sleep before calling run_once(false) (0 if work is ready).
  int poll_fd() const noexcept;
  std::optional<Duration> poll_timeout() const noexcept;

  // Queues `h` to resume in this or the next turn, after everything already queued.
  // Inline: every I/O completion and every wake-up goes through here.
  void schedule(std::coroutine_handle<> h) {
    URAFT_ASSERT(h != nullptr);
    ready_.push_back(h);
  }

  // Timers, for awaitables: arm wakes `node.waiter` at `node.deadline`.
  void arm(TimerNode& node);
  void disarm(TimerNode& node) noexcept;

  // Mixes a value into the trace hash (timers fired are mixed in automatically).
  void trace(std::uint64_t event) noexcept;
  std::uint64_t trace_hash() const noexcept { return trace_hash_; }

  // Cancels the main task (and with it everything that inherits its token).
  void stop() noexcept { stop_.request_cancel(); }
  CancelToken stop_token() noexcept { return stop_.token(); }

  // Cross-thread: fn runs on this loop's thread in a later turn. See core/post.h.
  PostQueue& post_queue();

  std::uint64_t resumptions() const noexcept { return resumptions_; }
  std::size_t ready_count() const noexcept { return ready_.size(); }
  std::size_t timer_count() const noexcept { return timers_.size(); }

  // Used by maybe_yield(): true once the current turn ran more than the yield budget.
  bool should_yield() const noexcept { return turn_resumptions_ >= options_.yield_budget; }

 private:
  friend class PostQueue;
  struct RunScope;  // Sets current() for the duration of a turn.

  // The loop whose turn runs on this thread, set by RunScope. Defined in loop.cc; declared
  // constinit so that code outside the library reads it with one TLS load, not through
  // a TLS wrapper call: every awaitable that is not handed a loop asks for it.
  static constinit thread_local Loop* current_;

  void fire_expired_timers();
  bool has_work() const noexcept;
  // Runs turns until `done`; throws Deadlock if nothing can ever set it.
  void run_until(const bool& done);

  std::unique_ptr<Backend> backend_;
  UringBackend* uring_;  // backend_ when it is io_uring, else null: asked for on every I/O.
  LoopOptions options_;
  Rng rng_;
  RingQueue<std::coroutine_handle<>> ready_;
  TimerHeap timers_;
  std::uint64_t timer_seq_ = 0;
  std::uint64_t trace_hash_ = 0x9e3779b97f4a7c15ULL;
  std::uint64_t resumptions_ = 0;
  unsigned turn_resumptions_ = 0;
  CancelSource stop_;
  std::unique_ptr<PostQueue> post_;
};

// Suspends the current task until `deadline` (or `duration` from now). Cancellable.
class SleepAwaiter {
 public:
  SleepAwaiter(Loop& loop, TimePoint deadline) : loop_(loop) { node_.deadline = deadline; }
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  ~SleepAwaiter() { loop_.disarm(node_); }

  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    node_.waiter = h;
    if (!token_of(h).register_callback(cancel_, &SleepAwaiter::on_cancel, this)) {
      cancelled_ = true;
      return false;
    }
    loop_.arm(node_);
    return true;
  }
  void await_resume() {
    cancel_.reset();
    if (cancelled_) throw Cancelled{};
  }

 private:
  static void on_cancel(void* self) noexcept {
    auto* s = static_cast<SleepAwaiter*>(self);
    s->cancelled_ = true;
    // A timer that already fired has queued its waiter: queueing it again would resume it
    // twice. Only a still-armed timer is disarmed and replaced by a wake-up here.
    if (!s->node_.armed()) return;
    s->loop_.disarm(s->node_);
    s->loop_.schedule(s->node_.waiter);
  }

  Loop& loop_;
  TimerNode node_;
  CancelCallback cancel_;
  bool cancelled_ = false;
};

inline SleepAwaiter sleep_until(TimePoint deadline) {
  return SleepAwaiter(Loop::current(), deadline);
}
inline SleepAwaiter sleep_for(Duration duration) {
  Loop& loop = Loop::current();
  return SleepAwaiter(loop, loop.now() + duration);
}

// Lets every other ready task run before this one continues. Cancellable.
inline SleepAwaiter yield() {
  Loop& loop = Loop::current();
  return SleepAwaiter(loop, loop.now());
}

// Yields only if this turn has already run its budget: for long CPU loops.
struct MaybeYield {
  bool await_ready() const noexcept { return !Loop::current().should_yield(); }
  template <typename Promise>
  void await_suspend(std::coroutine_handle<Promise> h) {
    Loop::current().schedule(h);
  }
  void await_resume() const noexcept {}
};
inline MaybeYield maybe_yield() { return {}; }

// A main task started on a loop: whether it finished, and its result. Destroying the
// handle of an unfinished task destroys the task (a deadlocked run torn down).
template <typename T>
class [[nodiscard]] Started {
 public:
  Started(Started&&) noexcept = default;
  Started& operator=(Started&&) = delete;
  ~Started() {
    if (outcome_ && !outcome_->done) outcome_->root.destroy();
  }

  bool done() const noexcept { return outcome_->done; }
  // The result, or the task's exception rethrown. Only once done().
  T get() {
    URAFT_ASSERT(outcome_->done);
    if (outcome_->exception) std::rethrow_exception(outcome_->exception);
    if constexpr (!std::is_void_v<T>) return std::move(*outcome_->value);
  }

 private:
  friend class Loop;
  struct Outcome {
    std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value{};
    std::exception_ptr exception;
    bool done = false;
    std::coroutine_handle<> root;
  };

  static Detached root(Task<T> main, Outcome* out) {
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(main);
      } else {
        out->value.emplace(co_await std::move(main));
      }
    } catch (...) {
      out->exception = std::current_exception();
    }
    out->done = true;
  }

  explicit Started(Loop& loop, Task<T> main) : outcome_(std::make_unique<Outcome>()) {
    Detached d = root(std::move(main), outcome_.get());
    d.handle.promise().set_cancel_token(loop.stop_token());
    outcome_->root = d.handle;
    loop.schedule(d.handle);
  }

  std::unique_ptr<Outcome> outcome_;
};

template <typename T>
Started<T> Loop::start(Task<T> main) {
  return Started<T>(*this, std::move(main));
}

template <typename T>
T Loop::run(Task<T> main) {
  Started<T> started = start(std::move(main));
  run_until(started.outcome_->done);
  return started.get();
}

}  // namespace uraft
