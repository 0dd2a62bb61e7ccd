// Loop: timers in order, virtual time, cancellation of sleeps, determinism by seed.
#include "core/loop.h"

#include <doctest/doctest.h>

#include <vector>

#include "core/scope.h"

namespace uraft {
namespace {

Task<void> sleeper(std::vector<int>* order, int id, Duration d) {
  co_await sleep_for(d);
  order->push_back(id);
}

Task<void> sleepers(std::vector<int>* order) {
  Scope scope;
  scope.spawn(sleeper(order, 3, 30ms));
  scope.spawn(sleeper(order, 1, 10ms));
  scope.spawn(sleeper(order, 2, 20ms));
  scope.spawn(sleeper(order, 4, 20ms));  // Same deadline as 2, armed later: fires later.
  co_await scope.join();
}

TEST_CASE("timers fire in deadline order, ties in arming order, on virtual time") {
  auto loop = Loop::simulated();
  std::vector<int> order;
  loop->run(sleepers(&order));
  CHECK(order == std::vector<int>{1, 2, 4, 3});
  CHECK(loop->now() == TimePoint(30ms));
}

Task<void> cancel_sleep(bool* cancelled) {
  Scope scope;
  scope.spawn([](bool* c) -> Task<void> {
    try {
      co_await sleep_for(1h);
    } catch (const Cancelled&) {
      *c = true;
      throw;
    }
  }(cancelled));
  co_await sleep_for(5ms);
  co_await scope.close();
}

TEST_CASE("cancelling a sleep resumes it at once with Cancelled and disarms the timer") {
  auto loop = Loop::simulated();
  bool cancelled = false;
  loop->run(cancel_sleep(&cancelled));
  CHECK(cancelled);
  CHECK(loop->now() == TimePoint(5ms));
  CHECK(loop->timer_count() == 0);
}

Task<void> random_worker(int id, int rounds) {
  Loop& loop = Loop::current();
  for (int i = 0; i < rounds; ++i) {
    co_await sleep_for(std::chrono::microseconds(loop.rng().uniform(0, 1000)));
    loop.trace(static_cast<std::uint64_t>(id));
  }
}

Task<void> random_workload() {
  Scope scope;
  for (int id = 0; id < 50; ++id) scope.spawn(random_worker(id, 20));
  co_await scope.join();
}

std::uint64_t hash_for_seed(std::uint64_t seed) {
  auto loop = Loop::simulated({.seed = seed});
  loop->run(random_workload());
  return loop->trace_hash();
}

TEST_CASE("same seed gives the same trace hash; different seeds differ") {
  CHECK(hash_for_seed(7) == hash_for_seed(7));
  CHECK(hash_for_seed(7) != hash_for_seed(8));
  CHECK(hash_for_seed(1) != hash_for_seed(2));
}

Task<void> waits_forever() {
  Event never;
  co_await never.wait();
}

TEST_CASE("a main task that can never wake is reported as a deadlock") {
  auto loop = Loop::simulated();
  CHECK_THROWS_AS(loop->run(waits_forever()), Deadlock);
}

}  // namespace
}  // namespace uraft

namespace uraft {
namespace {

Task<int> after_two_timers() {
  co_await sleep_for(1ms);
  co_await sleep_for(1ms);
  co_return 7;
}

TEST_CASE("start() queues a main task that a host drives with run_once()") {
  auto loop = Loop::simulated();
  Started<int> main = loop->start(after_two_timers());
  CHECK_FALSE(main.done());
  int turns = 0;
  while (!main.done()) {
    REQUIRE(turns < 10);
    (void)loop->run_once(true);
    ++turns;
  }
  CHECK(main.get() == 7);
  CHECK(loop->now() == TimePoint(2ms));
}

TEST_CASE("destroying the handle of an unfinished main task destroys the task") {
  auto loop = Loop::simulated();
  {
    Started<void> main = loop->start(waits_forever());
    (void)loop->run_once(true);
    CHECK_FALSE(main.done());
  }
  CHECK(loop->ready_count() == 0);  // Nothing left behind (ASan checks the frames).
}

}  // namespace
}  // namespace uraft

namespace uraft {
namespace {

Task<void> sleep_zero(bool* cancelled) {
  try {
    co_await sleep_for(0ms);
  } catch (const Cancelled&) {
    *cancelled = true;
  }
}

Task<void> cancel_after_fire(bool* cancelled) {
  Scope scope;
  scope.spawn(sleep_zero(cancelled));
  co_await yield();  // The sleeper arms its timer.
  // Our yield and the sleeper's timer fire in the same turn, ours first: the sleeper is
  // queued when we cancel it. It must resume once, not twice.
  co_await scope.close();
}

TEST_CASE("cancelling a sleep whose timer already fired resumes it exactly once") {
  auto loop = Loop::simulated();
  bool cancelled = false;
  loop->run(cancel_after_fire(&cancelled));
  CHECK(loop->ready_count() == 0);
}

}  // namespace
}  // namespace uraft
