#include "core/scope.h"

namespace uraft {

void Scope::spawn(Task<void> task) {
  URAFT_ASSERT(task.valid());
  if (active_++ == 0) idle_.reset();
  Detached runner = run(this, std::move(task));
  runner.handle.promise().set_cancel_token(source_.token());
  Loop::current().schedule(runner.handle);
}

Detached Scope::run(Scope* self, Task<void> task) {
  try {
    co_await std::move(task);
  } catch (const Cancelled&) {
  } catch (...) {
    if (!self->error_) self->error_ = std::current_exception();
    self->cancel();
  }
  if (--self->active_ == 0) self->idle_.set();
}

Task<void> Scope::join() {
  co_await idle_.wait_uncancellable();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

Task<void> Scope::close() {
  cancel();
  co_await join();
}

}  // namespace uraft
