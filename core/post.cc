#include "core/post.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

#include "core/io.h"

namespace uraft {

PostQueue::PostQueue(Loop& loop) : loop_(loop) {
  if (loop.uring_backend() == nullptr)
    throw std::logic_error("post(): cross-thread posting needs an io_uring loop");
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  Detached listener = listen(this);
  listener.handle.promise().set_cancel_token(stop_.token());
  listening_ = true;
  loop_.schedule(listener.handle);
}

PostQueue::~PostQueue() {
  stop_.request_cancel();
  while (listening_) loop_.run_once(true);  // Its read must complete before the fd closes.
  ::close(event_fd_);
}

void PostQueue::post(std::function<void()> fn) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    posted_.push_back(std::move(fn));
    wake = !wake_pending_;
    wake_pending_ = true;
  }
  if (wake) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(event_fd_, &one, sizeof one);
  }
}

void PostQueue::run_posted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(posted_);
    wake_pending_ = false;
  }
  for (auto& fn : batch) fn();
}

Detached PostQueue::listen(PostQueue* self) {
  // A poll, not a read: a read of an eventfd may block in a kernel worker, where it cannot
  // be cancelled; a poll always can.
  try {
    for (;;) {
      IoResult r = co_await io::poll(self->event_fd_, POLLIN);
      URAFT_ASSERT(r.ok());
      std::uint64_t count = 0;
      [[maybe_unused]] const ssize_t n = ::read(self->event_fd_, &count, sizeof count);
      self->run_posted();
    }
  } catch (const Cancelled&) {
  }
  self->listening_ = false;
}

}  // namespace uraft
