// Scope: structured concurrency for spawned tasks. Every task spawned into a scope runs
// with the scope's cancellation token and is joined before the scope ends: close() cancels
// and joins; join() just joins. The first exception other than Cancelled cancels the scope
// and is rethrown by join()/close(). Destroying a scope with tasks still running is a bug.
#pragma once

#include <cstddef>
#include <exception>

#include "core/event.h"
#include "core/loop.h"
#include "core/task.h"

namespace uraft {

// `co_await current_token()`: the cancellation token of the awaiting task.
struct CurrentToken {
  CancelToken token;
  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
    token = token_of(h);
    return false;
  }
  CancelToken await_resume() const noexcept { return token; }
};
inline CurrentToken current_token() noexcept { return {}; }

class Scope {
 public:
  // A scope cancelled with `parent` (e.g. the token of the task that owns it), or only by
  // its own cancel().
  explicit Scope(CancelToken parent = {}) : source_(parent) { idle_.set(); }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope() { URAFT_ASSERT(active_ == 0); }  // Join (co_await close()) before destroying.

  // Starts `task` in a later turn on the current loop.
  void spawn(Task<void> task);

  void cancel() noexcept { source_.request_cancel(); }
  bool cancelled() const noexcept { return source_.cancelled(); }
  CancelToken token() noexcept { return source_.token(); }
  std::size_t active() const noexcept { return active_; }

  // Waits until no task is running (not cancellable: the tasks are ours to wait for), then
  // rethrows the first error, if any.
  Task<void> join();
  Task<void> close();

 private:
  static Detached run(Scope* self, Task<void> task);

  CancelSource source_;
  std::size_t active_ = 0;
  std::exception_ptr error_;
  Event idle_;
};

}  // namespace uraft
