// core_bench: what the core costs. NOP round trips through uraft's io_uring loop against a
// bare liburing loop doing the same (the ratio is the loop's overhead, floor 1.25), then the
// per-operation cost of the scheduler's parts: awaiting a task, spawning and joining one,
// arming and cancelling a timer, a loop turn, a fiber switch. See docs/benchmarks.md.
#include <liburing.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "core/assert.h"
#include "core/fiber.h"
#include "core/io.h"
#include "core/loop.h"
#include "core/scope.h"
#include "core/task.h"
#include "core/timer_heap.h"
#include "core/uring_backend.h"

namespace uraft::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

// Same ring size as LoopOptions' default, so both sides of a ratio use equal rings.
constexpr unsigned kRingEntries = LoopOptions{}.uring_entries;
// NOPs in flight at once in the batched rows: one submit_and_wait per batch on both sides.
constexpr unsigned kBatch = 32;
static_assert(kBatch <= kRingEntries, "a batch must fit the submission queue");
// Tasks spawned before each join in the spawn rows: bounds the ready queue and live frames.
constexpr std::uint64_t kSpawnBatch = 1024;
// Timers already armed while the timer rows arm and disarm theirs: a busy node's heap.
constexpr std::size_t kBackgroundTimers = 1024;
// Distinct deadlines cycled through by the timer rows (a power of two, for masking).
constexpr std::size_t kDeadlines = 1024;
static_assert((kDeadlines & (kDeadlines - 1)) == 0);

nanoseconds since(Clock::time_point start) { return Clock::now() - start; }

// --- raw liburing: the baseline ------------------------------------------------------------

// A ring set up like UringBackend's (same flags, same fallback), owned by the bench.
class RawRing {
 public:
  RawRing() {
    io_uring_params params{};
    params.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    int rc = io_uring_queue_init_params(kRingEntries, &ring_, &params);
    if (rc == -EINVAL) {
      params = io_uring_params{};
      rc = io_uring_queue_init_params(kRingEntries, &ring_, &params);
    }
    if (rc < 0) throw std::runtime_error(std::string("io_uring_queue_init: ") + std::strerror(-rc));
  }
  RawRing(const RawRing&) = delete;
  RawRing& operator=(const RawRing&) = delete;
  ~RawRing() { io_uring_queue_exit(&ring_); }
  io_uring* get() noexcept { return &ring_; }

 private:
  io_uring ring_{};
};

// Prep one NOP, submit, wait for its completion, repeat.
nanoseconds raw_nop_unbatched(std::uint64_t ops) {
  RawRing ring;
  io_uring* r = ring.get();
  std::uint64_t failed = 0;
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < ops; ++i) {
    io_uring_sqe* sqe = io_uring_get_sqe(r);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, i);
    const int rc = io_uring_submit_and_wait(r, 1);
    URAFT_ASSERT(rc >= 0);
    io_uring_cqe* cqe = nullptr;
    URAFT_ASSERT(io_uring_peek_cqe(r, &cqe) == 0);
    if (cqe->res < 0) ++failed;
    io_uring_cqe_seen(r, cqe);
  }
  const auto took = since(start);
  URAFT_ASSERT(failed == 0);
  return took;
}

// Prep kBatch NOPs, one submit_and_wait(kBatch), reap them all, repeat.
nanoseconds raw_nop_batched(std::uint64_t ops) {
  URAFT_ASSERT(ops % kBatch == 0);
  RawRing ring;
  io_uring* r = ring.get();
  std::uint64_t failed = 0;
  std::uint64_t reaped = 0;
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < ops; i += kBatch) {
    for (unsigned j = 0; j < kBatch; ++j) {
      io_uring_sqe* sqe = io_uring_get_sqe(r);
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, i + j);
    }
    const int rc = io_uring_submit_and_wait(r, kBatch);
    URAFT_ASSERT(rc >= 0);
    unsigned head;
    unsigned count = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(r, head, cqe) {
      ++count;
      if (cqe->res < 0) ++failed;
    }
    io_uring_cq_advance(r, count);
    reaped += count;
  }
  const auto took = since(start);
  URAFT_ASSERT(failed == 0);
  URAFT_ASSERT(reaped == ops);
  return took;
}

// --- the same through uraft ----------------------------------------------------------------

Task<void> nop_worker(std::uint64_t n, std::uint64_t* failed) {
  for (std::uint64_t i = 0; i < n; ++i) {
    const IoResult r = co_await io::nop();
    if (!r.ok()) ++*failed;
  }
}

// `tasks` workers in one scope: each turn resumes them all, so each poll submits `tasks` NOPs.
Task<void> nop_fan_out(unsigned tasks, std::uint64_t per_task, std::uint64_t* failed) {
  Scope scope;
  for (unsigned i = 0; i < tasks; ++i) scope.spawn(nop_worker(per_task, failed));
  co_await scope.join();
}

nanoseconds uraft_nop(std::uint64_t ops, unsigned tasks) {
  URAFT_ASSERT(ops % tasks == 0);
  auto loop = Loop::uring();
  std::uint64_t failed = 0;
  const auto start = Clock::now();
  if (tasks == 1) {
    loop->run(nop_worker(ops, &failed));
  } else {
    loop->run(nop_fan_out(tasks, ops / tasks, &failed));
  }
  const auto took = since(start);
  URAFT_ASSERT(failed == 0);
  URAFT_ASSERT(loop->uring_backend()->completions() == ops);
  return took;
}

// --- scheduler parts -----------------------------------------------------------------------

// Makes the awaiting task ready again at once: one trip through the loop's ready queue.
struct Reschedule {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { Loop::current().schedule(h); }
  void await_resume() const noexcept {}
};

Task<std::uint64_t> trivial(std::uint64_t x) { co_return x + 1; }

Task<std::uint64_t> await_trivial_loop(std::uint64_t n) {
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < n; ++i) sum += co_await trivial(i);
  co_return sum;
}

nanoseconds coroutine_resume(std::uint64_t ops) {
  auto loop = Loop::simulated();
  const auto start = Clock::now();
  const std::uint64_t sum = loop->run(await_trivial_loop(ops));
  const auto took = since(start);
  URAFT_ASSERT(sum == ops * (ops + 1) / 2);
  sink(sum);
  return took;
}

Task<void> empty_task() { co_return; }

Task<void> spawn_join_loop(std::uint64_t n) {
  Scope scope;
  for (std::uint64_t left = n; left > 0;) {
    const std::uint64_t batch = std::min(left, kSpawnBatch);
    for (std::uint64_t i = 0; i < batch; ++i) scope.spawn(empty_task());
    co_await scope.join();
    left -= batch;
  }
}

nanoseconds spawn_join(std::uint64_t ops) {
  auto loop = Loop::simulated();
  const auto start = Clock::now();
  loop->run(spawn_join_loop(ops));
  const auto took = since(start);
  URAFT_ASSERT(loop->ready_count() == 0);
  return took;
}

std::vector<TimePoint> spread_deadlines(Loop& loop, std::size_t n) {
  std::vector<TimePoint> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(loop.now() + 1s + Duration(loop.rng().uniform(0, 999'999'999)));
  }
  return out;
}

// Loop::arm + Loop::disarm of one node, with `background` other timers armed: the heap's cost.
nanoseconds timer_arm_disarm(std::uint64_t ops, std::size_t background) {
  auto loop = Loop::simulated();
  std::vector<TimerNode> others(background);
  const auto other_deadlines = spread_deadlines(*loop, background);
  for (std::size_t i = 0; i < background; ++i) {
    others[i].deadline = other_deadlines[i];
    others[i].waiter = std::noop_coroutine();
    loop->arm(others[i]);
  }
  const auto deadlines = spread_deadlines(*loop, kDeadlines);
  TimerNode node;
  node.waiter = std::noop_coroutine();
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < ops; ++i) {
    node.deadline = deadlines[i & (kDeadlines - 1)];
    loop->arm(node);
    loop->disarm(node);
  }
  const auto took = since(start);
  URAFT_ASSERT(loop->timer_count() == background);
  for (auto& other : others) loop->disarm(other);
  return took;
}

Task<void> sleeper() { co_await sleep_for(1h); }

// Per task: spawn, sleep_for (arms a timer), Scope::close (cancel: disarm, reschedule, the
// Cancelled exception unwinds the sleeper and is caught by the scope), join.
Task<void> sleep_cancel_loop(std::uint64_t n) {
  for (std::uint64_t left = n; left > 0;) {
    const std::uint64_t batch = std::min(left, kSpawnBatch);
    Scope scope;
    for (std::uint64_t i = 0; i < batch; ++i) scope.spawn(sleeper());
    co_await Reschedule{};  // The sleepers run (and arm) before we continue.
    URAFT_ASSERT(Loop::current().timer_count() == batch);
    co_await scope.close();
    left -= batch;
  }
}

nanoseconds sleep_cancel(std::uint64_t ops) {
  auto loop = Loop::simulated();
  const auto start = Clock::now();
  loop->run(sleep_cancel_loop(ops));
  const auto took = since(start);
  URAFT_ASSERT(loop->timer_count() == 0);
  return took;
}

Task<void> reschedule_loop(std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) co_await Reschedule{};
}

nanoseconds loop_turn(std::uint64_t ops, bool uring) {
  auto loop = uring ? Loop::uring() : Loop::simulated();
  const std::uint64_t before = loop->resumptions();
  const auto start = Clock::now();
  loop->run(reschedule_loop(ops));
  const auto took = since(start);
  URAFT_ASSERT(loop->resumptions() - before == ops + 1);  // + the root task's first resume.
  return took;
}

Task<void> yield_loop(std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) co_await yield();
}

nanoseconds coroutine_yield(std::uint64_t ops) {
  auto loop = Loop::simulated();
  const auto start = Clock::now();
  loop->run(yield_loop(ops));
  return since(start);
}

// fiber_yield() is await(yield_task()): the fiber parks (a stack switch), the loop side
// awaits a task doing co_await yield(), and switches back. Compare with coroutine_yield.
Task<void> fiber_switch_loop(std::uint64_t n) {
  co_await run_fiber([n] {
    URAFT_ASSERT(in_fiber());
    for (std::uint64_t i = 0; i < n; ++i) fiber_yield();
  });
}

nanoseconds fiber_switch(std::uint64_t ops) {
  auto loop = Loop::simulated();
  const auto start = Clock::now();
  loop->run(fiber_switch_loop(ops));
  return since(start);
}

// --- the program ---------------------------------------------------------------------------

std::vector<Case> cases(bool have_uring, const std::string& uring_error) {
  const std::string no_uring = have_uring ? "" : "io_uring unavailable: " + uring_error;
  std::vector<Case> out;
  auto add = [&](std::string key, std::string label, std::uint64_t granularity,
                 std::function<nanoseconds(std::uint64_t)> run, std::string skipped) {
    Case c;
    c.key = std::move(key);
    c.label = std::move(label);
    c.granularity = granularity;
    c.run = std::move(run);
    c.skipped = std::move(skipped);
    out.push_back(std::move(c));
  };
  const std::string batched = " x" + std::to_string(kBatch);

  add("nop_raw", "nop: raw liburing, unbatched", 1, raw_nop_unbatched, no_uring);
  add("nop_uraft", "nop: uraft co_await io::nop(), unbatched", 1,
      [](std::uint64_t ops) { return uraft_nop(ops, 1); }, no_uring);
  add("nop_raw_batched", "nop: raw liburing, batched" + batched, kBatch, raw_nop_batched, no_uring);
  add("nop_uraft_batched", "nop: uraft " + std::to_string(kBatch) + " tasks, batched" + batched,
      kBatch, [](std::uint64_t ops) { return uraft_nop(ops, kBatch); }, no_uring);

  add("coroutine_resume", "sim: await a trivially completing task", 1, coroutine_resume, "");
  add("spawn_join", "sim: Scope::spawn(empty task) + join", 1, spawn_join, "");
  add("timer_arm_disarm", "sim: Loop::arm + disarm, empty heap", 1,
      [](std::uint64_t ops) { return timer_arm_disarm(ops, 0); }, "");
  add("timer_arm_disarm_1k",
      "sim: Loop::arm + disarm, " + std::to_string(kBackgroundTimers) + " armed", 1,
      [](std::uint64_t ops) { return timer_arm_disarm(ops, kBackgroundTimers); }, "");
  add("sleep_cancel", "sim: spawn + sleep_for + Scope::close", 1, sleep_cancel, "");
  add("loop_turn_sim", "sim: loop turn (reschedule round trip)", 1,
      [](std::uint64_t ops) { return loop_turn(ops, false); }, "");
  add("loop_turn_uring", "uring: loop turn (reschedule round trip)", 1,
      [](std::uint64_t ops) { return loop_turn(ops, true); }, no_uring);
  add("coroutine_yield", "sim: co_await yield() round trip", 1, coroutine_yield, "");
  add("fiber_switch", "sim: fiber_yield() round trip", 1, fiber_switch, "");
  return out;
}

int main_impl(int argc, char** argv) {
  CLI::App app{"core_bench: the cost of uraft's core (io_uring NOP round trips against raw "
               "liburing, task await, spawn, timers, loop turns, fiber switches)"};
  HarnessOptions options;
  add_options(app, options);
  CLI11_PARSE(app, argc, argv);

  bool have_uring = true;
  std::string uring_error;
  try {
    RawRing probe;
  } catch (const std::exception& e) {
    have_uring = false;
    uring_error = e.what();
  }

  Harness harness(options);
  for (Case& c : cases(have_uring, uring_error)) harness.add(std::move(c));
  if (harness.empty()) {
    std::fprintf(stderr, "core_bench: no case matches --filter '%s'\n", options.filter.c_str());
    return 2;
  }
  harness.run_all();

  constexpr double kOverheadFloor = 1.25;
  harness.ratio("nop_unbatched_uraft_over_raw", "nop unbatched: uraft / raw", "nop_uraft",
                "nop_raw", kOverheadFloor);
  harness.ratio("nop_batched_uraft_over_raw", "nop batched: uraft / raw", "nop_uraft_batched",
                "nop_raw_batched", kOverheadFloor);
  harness.print_table();
  return harness.write_json("core_bench") ? 0 : 1;
}

}  // namespace
}  // namespace uraft::bench

int main(int argc, char** argv) { return uraft::bench::main_impl(argc, argv); }
