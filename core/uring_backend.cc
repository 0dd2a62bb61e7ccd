#include "core/uring_backend.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>

#include "core/assert.h"

namespace uraft {
namespace {

std::string explain_setup_error(int err) {
  std::string msg = "io_uring is not available: io_uring_queue_init failed with ";
  msg += std::strerror(err);
  switch (err) {
    case ENOSYS:
      msg += " (this kernel has no io_uring; uraft needs Linux 5.11 or newer)";
      break;
    case EPERM:
      msg += " (io_uring is disabled here: a container seccomp profile or the "
             "kernel.io_uring_disabled sysctl forbids it)";
      break;
    case ENOMEM:
      msg += " (not enough locked memory for the ring: raise RLIMIT_MEMLOCK, e.g. ulimit -l)";
      break;
    default:
      break;
  }
  return msg;
}

__kernel_timespec to_timespec(Duration d) {
  if (d < Duration::zero()) d = Duration::zero();
  const auto ns = d.count();
  return __kernel_timespec{.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
}

}  // namespace

UringBackend::UringBackend(unsigned entries) {
  io_uring_params params{};
  params.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
  int rc = io_uring_queue_init_params(entries, &ring_, &params);
  if (rc == -EINVAL) {  // Older kernel without those flags: plain setup.
    params = io_uring_params{};
    rc = io_uring_queue_init_params(entries, &ring_, &params);
  }
  if (rc < 0) throw std::runtime_error(explain_setup_error(-rc));
  if ((params.features & IORING_FEAT_EXT_ARG) == 0) {
    io_uring_queue_exit(&ring_);
    throw std::runtime_error(
        "io_uring is too old here: uraft needs IORING_FEAT_EXT_ARG (Linux 5.11 or newer)");
  }
}

UringBackend::~UringBackend() {
  // Every operation's owner outlives its completion; a loop destroyed with operations in
  // flight would let the kernel write into freed memory.
  URAFT_ASSERT(inflight_ == 0);
  io_uring_queue_exit(&ring_);
}

TimePoint UringBackend::now() const noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return TimePoint(Duration(ts.tv_sec * 1'000'000'000LL + ts.tv_nsec));
}

io_uring_sqe* UringBackend::get_sqe_after_submit() {
  for (;;) {
    submit_pending();
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
  }
}

io_uring_sqe* UringBackend::prepare_untracked() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_sqe_set_data64(sqe, 0);
  return sqe;
}

void UringBackend::cancel(UringOp* op) {
  io_uring_sqe* sqe = prepare_untracked();
  io_uring_prep_cancel(sqe, op, 0);
  io_uring_sqe_set_data64(sqe, 0);
}

void UringBackend::submit_pending() {
  for (;;) {
    const int rc = io_uring_submit(&ring_);
    if (rc >= 0) {
      ++submits_;
      return;
    }
    if (rc == -EINTR) continue;
    if (rc == -EAGAIN || rc == -EBUSY) {
      drain();  // Completion queue pressure: make room, then retry.
      continue;
    }
    URAFT_ASSERT(rc >= 0);  // Any other error means a malformed submission: a bug.
  }
}

void UringBackend::poll(std::optional<TimePoint> deadline, bool block) {
  if (!block) {
    if (io_uring_sq_ready(&ring_) > 0) submit_pending();
    drain();
    return;
  }
  io_uring_cqe* cqe = nullptr;
  int rc;
  if (deadline) {
    __kernel_timespec ts = to_timespec(*deadline - now());
    rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  } else {
    rc = io_uring_submit_and_wait(&ring_, 1);
  }
  ++submits_;
  // -ETIME: the deadline passed; -EINTR: a signal. Both just end the wait.
  URAFT_ASSERT(rc >= 0 || rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY);
  drain();
}

unsigned UringBackend::drain() {
  unsigned head;
  unsigned count = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++count;
    auto* op = static_cast<UringOp*>(io_uring_cqe_get_data(cqe));
    if (op == nullptr) continue;  // An untracked entry (cancel request).
    const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (!more) {
      URAFT_ASSERT(inflight_ > 0);
      --inflight_;
    }
    op->on_complete(op, cqe->res, cqe->flags);
  }
  io_uring_cq_advance(&ring_, count);
  completions_ += count;
  return count;
}

}  // namespace uraft
