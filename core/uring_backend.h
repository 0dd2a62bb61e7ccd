// The io_uring backend: one ring per loop. Operations are prepared during a turn and
// submitted together when the loop polls; completions are drained in batches. Each
// operation's user_data points to a UringOp that its owner keeps alive until the
// operation's completion has been dispatched, cancelled or not (cancellation is asynchronous:
// a cancel request only makes the completion come sooner).
#pragma once

#include <liburing.h>

#include <cstdint>

#include "core/assert.h"
#include "core/backend.h"

namespace uraft {

struct UringOp {
  // Called once per completion (more than once for multishot operations while
  // IORING_CQE_F_MORE is set). `res` is the result or -errno.
  void (*on_complete)(UringOp* op, int res, std::uint32_t flags) noexcept = nullptr;
};

class UringBackend final : public Backend {
 public:
  // Throws std::runtime_error saying plainly why io_uring is unavailable.
  explicit UringBackend(unsigned entries);
  UringBackend(const UringBackend&) = delete;
  UringBackend& operator=(const UringBackend&) = delete;
  ~UringBackend() override;

  TimePoint now() const noexcept override;
  void poll(std::optional<TimePoint> deadline, bool block) override;
  unsigned inflight() const noexcept override { return inflight_; }
  UringBackend* uring() noexcept override { return this; }

  // A submission entry for `op`, counted in flight until its last completion. When the
  // submission queue is full, what is queued is submitted first. Inline: one per I/O.
  io_uring_sqe* prepare(UringOp* op) {
    URAFT_ASSERT(op->on_complete != nullptr);
    io_uring_sqe* sqe = get_sqe();
    io_uring_sqe_set_data(sqe, op);
    ++inflight_;
    return sqe;
  }
  // An entry whose completion is ignored (cancel requests, fire-and-forget writes).
  io_uring_sqe* prepare_untracked();
  // Asks the kernel to cancel `op`; its completion still arrives (often with -ECANCELED).
  void cancel(UringOp* op);
  // Multishot operations stay in flight while their completions carry IORING_CQE_F_MORE.

  int ring_fd() const noexcept { return ring_.ring_fd; }
  std::uint64_t submits() const noexcept { return submits_; }
  std::uint64_t completions() const noexcept { return completions_; }

 private:
  io_uring_sqe* get_sqe() {
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
    return get_sqe_after_submit();
  }
  // Queue full: hands what is queued to the kernel, then takes an entry.
  io_uring_sqe* get_sqe_after_submit();
  void submit_pending();
  unsigned drain();

  io_uring ring_{};
  unsigned inflight_ = 0;
  std::uint64_t submits_ = 0;
  std::uint64_t completions_ = 0;
};

}  // namespace uraft
