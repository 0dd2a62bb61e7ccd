// Combinators over tasks run concurrently on the current loop:
//   when_all(tasks)         all results, in order; the first failure cancels the rest.
//   when_any(tasks)         the first to finish wins; the others are cancelled.
//   when_quorum(k, tasks)   the first k successes; lost as soon as k can no longer succeed.
// Each combinator joins every child before it returns, whatever happened: no child outlives
// it. Children run under a token linked to the awaiting task's, so cancelling the awaiter
// cancels them; the combinator then rethrows Cancelled.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/loop.h"
#include "core/scope.h"
#include "core/task.h"

namespace uraft {

namespace detail {

// Children of one combinator: their shared token, and a count the parent joins on without
// being cancellable itself (the children are cancelled instead, and always finish).
class ChildGroup {
 public:
  explicit ChildGroup(CancelToken parent) : source_(parent) {}
  ChildGroup(const ChildGroup&) = delete;
  ChildGroup& operator=(const ChildGroup&) = delete;
  ~ChildGroup() { URAFT_ASSERT(active_ == 0); }

  template <typename T, typename OnDone>
  void start(Task<T> task, OnDone on_done) {
    ++active_;
    Detached runner = run<T, OnDone>(this, std::move(task), std::move(on_done));
    runner.handle.promise().set_cancel_token(source_.token());
    Loop::current().schedule(runner.handle);
  }

  void cancel() noexcept { source_.request_cancel(); }
  bool parent_cancelled() const noexcept { return parent_cancelled_; }

  struct JoinAwaiter {
    ChildGroup& group;
    bool await_ready() const noexcept { return group.active_ == 0; }
    void await_suspend(std::coroutine_handle<> h) noexcept { group.joiner_ = h; }
    void await_resume() const noexcept {}
  };
  // Waits for every child. Not cancellable: cancellation reaches the children instead.
  JoinAwaiter join() noexcept { return JoinAwaiter{*this}; }

 private:
  // `on_done(std::optional<T>& value_or_empty, std::exception_ptr)`.
  template <typename T, typename OnDone>
  static Detached run(ChildGroup* group, Task<T> task, OnDone on_done) {
    std::exception_ptr error;
    if constexpr (std::is_void_v<T>) {
      bool ok = false;
      try {
        co_await std::move(task);
        ok = true;
      } catch (...) {
        error = std::current_exception();
      }
      on_done(ok, error);
    } else {
      std::optional<T> value;
      try {
        value.emplace(co_await std::move(task));
      } catch (...) {
        error = std::current_exception();
      }
      on_done(value, error);
    }
    if (--group->active_ == 0 && group->joiner_) Loop::current().schedule(group->joiner_);
  }

  CancelSource source_;
  std::size_t active_ = 0;
  std::coroutine_handle<> joiner_;
  bool parent_cancelled_ = false;
};

inline bool is_cancelled(const std::exception_ptr& e) {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace detail

// --- when_all ---

template <typename T>
Task<std::vector<T>> when_all(std::vector<Task<T>> tasks) {
  const CancelToken token = co_await current_token();
  detail::ChildGroup group(token);
  std::vector<std::optional<T>> results(tasks.size());
  std::exception_ptr first_error;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    group.start(std::move(tasks[i]), [&, i](std::optional<T>& value, std::exception_ptr error) {
      if (value) {
        results[i] = std::move(value);
      } else if (!first_error || detail::is_cancelled(first_error)) {
        first_error = error;
        group.cancel();
      }
    });
  }
  co_await group.join();
  if (first_error) std::rethrow_exception(first_error);
  std::vector<T> out;
  out.reserve(results.size());
  for (auto& r : results) out.push_back(std::move(*r));
  co_return out;
}

inline Task<void> when_all(std::vector<Task<void>> tasks) {
  const CancelToken token = co_await current_token();
  detail::ChildGroup group(token);
  std::exception_ptr first_error;
  for (auto& task : tasks) {
    group.start(std::move(task), [&](bool ok, std::exception_ptr error) {
      if (!ok && (!first_error || detail::is_cancelled(first_error))) {
        first_error = error;
        group.cancel();
      }
    });
  }
  co_await group.join();
  if (first_error) std::rethrow_exception(first_error);
}

// --- when_any ---

template <typename T>
struct AnyResult {
  std::size_t index;
  T value;
};

// The first task to finish decides: its value is returned, or its exception rethrown.
template <typename T>
Task<AnyResult<T>> when_any(std::vector<Task<T>> tasks) {
  URAFT_ASSERT(!tasks.empty());
  const CancelToken token = co_await current_token();
  detail::ChildGroup group(token);
  std::optional<AnyResult<T>> winner;
  std::exception_ptr winner_error;
  bool decided = false;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    group.start(std::move(tasks[i]), [&, i](std::optional<T>& value, std::exception_ptr error) {
      if (decided) return;
      if (!value && detail::is_cancelled(error) && token.cancelled()) return;
      decided = true;
      if (value) winner.emplace(AnyResult<T>{i, std::move(*value)});
      else winner_error = error;
      group.cancel();
    });
  }
  co_await group.join();
  if (winner_error) std::rethrow_exception(winner_error);
  if (!winner) throw Cancelled{};
  co_return std::move(*winner);
}

// --- when_quorum ---

template <typename T>
struct QuorumResult {
  bool won = false;
  std::vector<std::pair<std::size_t, T>> successes;  // (task index, value), in finishing order.
  std::size_t failures = 0;
  std::exception_ptr last_error;                      // The last exception among failures.
};

struct AlwaysSucceeds {
  template <typename T>
  bool operator()(const T&) const noexcept {
    return true;
  }
};

// Runs all tasks; a task succeeds if it returns a value `is_success` accepts, and fails if it
// throws or returns anything else. Resolves won once `k` succeed, lost once more than
// n - k fail; cancels and joins the rest either way. Throws Cancelled if the awaiter was
// cancelled before the quorum was decided.
template <typename T, typename IsSuccess = AlwaysSucceeds>
Task<QuorumResult<T>> when_quorum(std::size_t k, std::vector<Task<T>> tasks,
                                  IsSuccess is_success = {}) {
  URAFT_ASSERT(k <= tasks.size());
  const CancelToken token = co_await current_token();
  QuorumResult<T> result;
  const std::size_t n = tasks.size();
  if (k == 0) {
    result.won = true;
    co_return result;
  }
  detail::ChildGroup group(token);
  bool decided = false;
  for (std::size_t i = 0; i < n; ++i) {
    group.start(std::move(tasks[i]), [&, i](std::optional<T>& value, std::exception_ptr error) {
      if (decided) return;
      if (value && is_success(*value)) {
        result.successes.emplace_back(i, std::move(*value));
      } else {
        ++result.failures;
        if (error) result.last_error = error;
      }
      if (result.successes.size() == k) {
        decided = result.won = true;
      } else if (result.failures > n - k) {
        decided = true;
      }
      if (decided) group.cancel();
    });
  }
  co_await group.join();
  if (!decided) throw Cancelled{};  // Only cancellation can leave it undecided.
  if (!result.won && token.cancelled()) throw Cancelled{};
  co_return result;
}

}  // namespace uraft
