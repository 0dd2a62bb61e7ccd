// File and socket operations on io_uring, as awaitables returning IoResult. Each operation's
// state lives in the awaiting coroutine's frame, which stays suspended until the kernel's
// completion arrives — also when the operation is cancelled, since cancellation is
// asynchronous. On a loop without io_uring (virtual time) every operation fails with ENOSYS.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>

#include "core/loop.h"
#include "core/uring_backend.h"

namespace uraft {

// The result of one kernel operation: a count or descriptor when ok, else an errno.
struct [[nodiscard]] IoResult {
  int res = 0;

  bool ok() const noexcept { return res >= 0; }
  int error() const noexcept { return res < 0 ? -res : 0; }
  std::size_t bytes() const noexcept { return ok() ? static_cast<std::size_t>(res) : 0; }
  std::error_code error_code() const noexcept { return {error(), std::generic_category()}; }
  std::string message() const { return error_code().message(); }
};

// `Prep` fills a submission entry: void(io_uring_sqe*).
template <typename Prep>
class [[nodiscard]] IoAwaiter : private UringOp {
 public:
  explicit IoAwaiter(Prep prep) : prep_(std::move(prep)) { on_complete = &complete; }
  IoAwaiter(const IoAwaiter&) = delete;
  IoAwaiter& operator=(const IoAwaiter&) = delete;
  IoAwaiter(IoAwaiter&& other) noexcept : UringOp(), prep_(std::move(other.prep_)) {
    URAFT_ASSERT(!other.in_flight_);
    on_complete = &complete;
  }
  ~IoAwaiter() { URAFT_ASSERT(!in_flight_); }  // Freed only after the kernel's completion.

  bool await_ready() const noexcept { return false; }

  // Inlined into every awaiting coroutine: this is the whole per-operation cost of an await
  // besides the kernel's, and a call here was measurable in batched submissions.
  template <typename Promise>
  [[gnu::always_inline]] bool await_suspend(std::coroutine_handle<Promise> h) {
    loop_ = &Loop::current();
    UringBackend* backend = loop_->uring_backend();
    if (backend == nullptr) {
      res_ = -ENOSYS;
      return false;
    }
    if (!token_of(h).register_callback(cancel_, &IoAwaiter::on_cancel, this)) {
      cancelled_ = true;
      return false;
    }
    waiter_ = h;
    prep_(backend->prepare(this));
    in_flight_ = true;
    return true;
  }

  IoResult await_resume() {
    cancel_.reset();
    if (cancelled_ && (res_ == -ECANCELED || !submitted_once())) throw Cancelled{};
    return IoResult{res_};
  }

 private:
  bool submitted_once() const noexcept { return waiter_ != nullptr; }

  static void complete(UringOp* op, int res, std::uint32_t) noexcept {
    auto* self = static_cast<IoAwaiter*>(op);
    self->in_flight_ = false;
    self->res_ = res;
    self->loop_->schedule(self->waiter_);
  }
  static void on_cancel(void* ctx) noexcept {
    auto* self = static_cast<IoAwaiter*>(ctx);
    self->cancelled_ = true;
    // The completion still arrives; we resume then. If it already did (the waiter is
    // queued), there is nothing left to cancel and the result stands.
    if (self->in_flight_) self->loop_->uring_backend()->cancel(self);
  }

  Prep prep_;
  Loop* loop_ = nullptr;  // Set when suspending; its backend is io_uring.
  std::coroutine_handle<> waiter_;
  CancelCallback cancel_;
  int res_ = 0;
  bool in_flight_ = false;
  bool cancelled_ = false;
};

template <typename Prep>
IoAwaiter<Prep> make_io(Prep prep) {
  return IoAwaiter<Prep>(std::move(prep));
}

// The operations live in namespace io and are called qualified (io::send, io::connect), so
// they never collide with the POSIX functions of the same names through argument lookup.
namespace io {

// --- generic ---
inline auto nop() {
  return make_io([](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
}

// Completes when `fd` is ready for `events` (POLLIN, POLLOUT...): the revents that fired.
inline auto poll(int fd, unsigned events) {
  return make_io([=](io_uring_sqe* sqe) { io_uring_prep_poll_add(sqe, fd, events); });
}

// --- files ---
inline auto open_at(int dir_fd, std::string path, int flags, mode_t mode = 0644) {
  // The path is read by the kernel after submission: it lives in the awaiter.
  struct Prep {
    int dir_fd;
    std::string path;
    int flags;
    mode_t mode;
    void operator()(io_uring_sqe* sqe) const {
      io_uring_prep_openat(sqe, dir_fd, path.c_str(), flags, mode);
    }
  };
  return make_io(Prep{dir_fd, std::move(path), flags, mode});
}
inline auto close_fd(int fd) {
  return make_io([fd](io_uring_sqe* sqe) { io_uring_prep_close(sqe, fd); });
}
inline auto read_at(int fd, std::span<std::byte> buf, std::uint64_t offset) {
  return make_io([=](io_uring_sqe* sqe) {
    io_uring_prep_read(sqe, fd, buf.data(), static_cast<unsigned>(buf.size()), offset);
  });
}
inline auto write_at(int fd, std::span<const std::byte> buf, std::uint64_t offset) {
  return make_io([=](io_uring_sqe* sqe) {
    io_uring_prep_write(sqe, fd, buf.data(), static_cast<unsigned>(buf.size()), offset);
  });
}
inline auto fsync(int fd) {
  return make_io([fd](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, 0); });
}
inline auto fdatasync(int fd) {
  return make_io([fd](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); });
}
inline auto fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length) {
  return make_io([=](io_uring_sqe* sqe) { io_uring_prep_fallocate(sqe, fd, mode, offset, length); });
}

// --- sockets ---
inline auto accept(int fd, int flags = SOCK_CLOEXEC) {
  return make_io([=](io_uring_sqe* sqe) { io_uring_prep_accept(sqe, fd, nullptr, nullptr, flags); });
}
// `addr` must stay valid until the operation completes (the caller's frame owns it).
inline auto connect(int fd, const sockaddr* addr, socklen_t len) {
  return make_io([=](io_uring_sqe* sqe) { io_uring_prep_connect(sqe, fd, addr, len); });
}
inline auto send(int fd, std::span<const std::byte> buf, int flags = MSG_NOSIGNAL) {
  return make_io([=](io_uring_sqe* sqe) { io_uring_prep_send(sqe, fd, buf.data(), buf.size(), flags); });
}
inline auto recv(int fd, std::span<std::byte> buf, int flags = 0) {
  return make_io([=](io_uring_sqe* sqe) { io_uring_prep_recv(sqe, fd, buf.data(), buf.size(), flags); });
}
inline auto sendmsg(int fd, const msghdr* msg, unsigned flags = MSG_NOSIGNAL) {
  return make_io([=](io_uring_sqe* sqe) { io_uring_prep_sendmsg(sqe, fd, msg, flags); });
}
inline auto recvmsg(int fd, msghdr* msg, unsigned flags = 0) {
  return make_io([=](io_uring_sqe* sqe) { io_uring_prep_recvmsg(sqe, fd, msg, flags); });
}

}  // namespace io
}  // namespace uraft
