#include "core/loop.h"

#include <cstdio>
#include <string>

#include "core/post.h"
#include "core/uring_backend.h"

namespace uraft {
namespace {

std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

std::string describe_loop(const Loop* loop) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "seed %llu, loop time %lld ns",
                static_cast<unsigned long long>(loop->seed()),
                static_cast<long long>(loop->now().time_since_epoch().count()));
  return buf;
}

}  // namespace

constinit thread_local Loop* Loop::current_ = nullptr;

// Makes `loop` the current one for a turn; nested turns of the same loop are allowed,
// turns of two loops on one thread are not interleaved.
struct Loop::RunScope {
  explicit RunScope(Loop& loop) : previous(current_) {
    URAFT_ASSERT(previous == nullptr || previous == &loop);
    current_ = &loop;
  }
  ~RunScope() { current_ = previous; }
  Loop* previous;
};

std::unique_ptr<Loop> Loop::simulated(LoopOptions options) {
  return std::make_unique<Loop>(std::make_unique<SimBackend>(), options);
}

std::unique_ptr<Loop> Loop::uring(LoopOptions options) {
  return std::make_unique<Loop>(std::make_unique<UringBackend>(options.uring_entries), options);
}

Loop::Loop(std::unique_ptr<Backend> backend, LoopOptions options)
    : backend_(std::move(backend)), uring_(backend_->uring()), options_(options),
      rng_(options.seed) {}

Loop::~Loop() {
  // Anything still queued belongs to tasks whose owners are gone: a structured program
  // has joined them all. Timer nodes live in those frames, so do not touch them.
  URAFT_ASSERT(ready_.empty());
}

void Loop::arm(TimerNode& node) {
  node.seq = timer_seq_++;
  timers_.push(node);
}

void Loop::disarm(TimerNode& node) noexcept {
  if (node.armed()) timers_.remove(node);
}

void Loop::trace(std::uint64_t event) noexcept {
  trace_hash_ = mix64(trace_hash_ ^ mix64(event));
}

PostQueue& Loop::post_queue() {
  if (!post_) post_ = std::make_unique<PostQueue>(*this);
  return *post_;
}

void Loop::fire_expired_timers() {
  if (timers_.empty()) return;  // Spares a clock read per turn.
  const TimePoint now = backend_->now();
  while (TimerNode* top = timers_.top()) {
    if (top->deadline > now) break;
    timers_.pop();
    trace(static_cast<std::uint64_t>(top->deadline.time_since_epoch().count()));
    trace(top->seq);
    ready_.push_back(top->waiter);
  }
}

bool Loop::has_work() const noexcept {
  return !ready_.empty() || !timers_.empty() || backend_->inflight() > 0 ||
         (post_ && post_->keeps_alive());
}

bool Loop::run_once(bool block) {
  RunScope scope(*this);
  // Wait only when nothing is ready; then whatever became ready runs in this same turn,
  // so a caller can test its condition right after run_once() returns.
  std::optional<TimePoint> deadline;
  if (TimerNode* top = timers_.top()) deadline = top->deadline;
  // With nothing ready, no timer, no I/O in flight, nothing could ever end the wait.
  backend_->poll(deadline, block && ready_.empty() && has_work());
  fire_expired_timers();
  // What these resumptions schedule waits for the next turn, so a task that keeps
  // rescheduling itself cannot starve I/O and timers.
  turn_resumptions_ = 0;
  for (std::size_t n = ready_.size(); n > 0; --n) {
    std::coroutine_handle<> h = ready_.pop_front();
    ++resumptions_;
    ++turn_resumptions_;
    h.resume();
  }
  // A host loop polls the ring fd next: what this turn prepared must be in the kernel.
  if (!block) backend_->poll(std::nullopt, false);
  return has_work();
}

void Loop::run_until(const bool& done) {
  // A failed assertion during the run names the loop's seed and time, unless the code
  // running installed a more precise context (a node, a term).
  struct LoopContext {
    explicit LoopContext(const Loop* loop) {
      if (assert_context) return;
      assert_context = [loop] { return describe_loop(loop); };
      installed = true;
    }
    ~LoopContext() {
      if (installed) assert_context = nullptr;
    }
    bool installed = false;
  } context(this);
  while (!done) {
    if (run_once(true) || done) continue;
    throw Deadlock("loop: the main task waits, but nothing is ready, no timer is armed "
                   "and no I/O is in flight: it can never wake");
  }
}

int Loop::poll_fd() const noexcept {
  return uring_ != nullptr ? uring_->ring_fd() : -1;
}

std::optional<Duration> Loop::poll_timeout() const noexcept {
  if (!ready_.empty()) return Duration::zero();
  TimerNode* top = timers_.top();
  if (top == nullptr) return std::nullopt;
  const Duration left = top->deadline - backend_->now();
  return left > Duration::zero() ? left : Duration::zero();
}

}  // namespace uraft
