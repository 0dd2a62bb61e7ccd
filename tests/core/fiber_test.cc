// Fibers: blocking-style functions on their own stacks, bridged to tasks by await(), on
// virtual time: results, exceptions, interleaving, scale, cancellation, yield, nesting.
#include "core/fiber.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/event.h"
#include "core/loop.h"
#include "core/scope.h"
#include "core/when.h"

namespace uraft {
namespace {

// Counts live instances: proves captures and fiber-stack objects are destroyed exactly once.
struct Counted {
  static int live;
  Counted() { ++live; }
  Counted(const Counted&) { ++live; }
  Counted(Counted&&) noexcept { ++live; }
  Counted& operator=(const Counted&) = default;
  ~Counted() { --live; }
};
int Counted::live = 0;

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             Loop::current().now().time_since_epoch())
      .count();
}

Task<void> sleep_task(Duration d) { co_await sleep_for(d); }

Task<int> sleep_then(Duration d, int value) {
  co_await sleep_for(d);
  co_return value;
}

Task<void> wait_event(Event* event) { co_await event->wait(); }

TEST_CASE("a fiber returns its function's value to the awaiting task") {
  // Goal: run_fiber is a Task with fn's result (void, int, move-only), and fn runs in a fiber.
  auto loop = Loop::simulated();
  bool inside = false;
  CHECK(loop->run(run_fiber([&inside] {
          inside = in_fiber();
          return 42;
        })) == 42);
  CHECK(inside);
  CHECK_FALSE(in_fiber());

  auto boxed = loop->run(run_fiber([] { return std::make_unique<std::string>("boxed"); }));
  REQUIRE(boxed != nullptr);
  CHECK(*boxed == "boxed");

  int calls = 0;
  loop->run(run_fiber([&calls] { ++calls; }));
  CHECK(calls == 1);
  CHECK(loop->now() == TimePoint{});  // Nothing awaited: it ran inline, no time passed.
}

TEST_CASE("the function and its captures are destroyed exactly once") {
  // Goal: no leak or double destruction of what run_fiber owns, across awaits.
  Counted::live = 0;
  {
    auto loop = Loop::simulated();
    Counted captured;
    const int result = loop->run(run_fiber([captured] {
      Counted on_stack;
      await(sleep_task(1ms));
      return Counted::live;
    }));
    CHECK(result >= 3);  // captured, its copy in the fiber body, on_stack.
  }
  CHECK(Counted::live == 0);
}

TEST_CASE("stack_bytes sizes the fiber's stack") {
  // Goal: a fiber given 1 MiB can hold a 512 KiB frame (the default 128 KiB could not).
  auto loop = Loop::simulated();
  const int last = loop->run(run_fiber(
      [] {
        char big[512 * 1024];
        std::fill(std::begin(big), std::end(big), char{1});
        await(sleep_task(1ms));  // Park with the big frame live, then read it back.
        int sum = 0;
        for (char c : big) sum += c;
        return sum;
      },
      1024 * 1024));
  CHECK(last == 512 * 1024);
}

Task<int> fails_later() {
  co_await sleep_for(1ms);
  throw std::logic_error("task failed");
}

TEST_CASE("an exception in a fiber reaches the awaiter; a task's exception reaches the fiber") {
  // Goal: errors cross the bridge both ways, before and after the fiber has parked.
  auto loop = Loop::simulated();
  CHECK_THROWS_WITH_AS(loop->run(run_fiber([]() -> int { throw std::runtime_error("early"); })),
                       "early", std::runtime_error);
  CHECK_THROWS_WITH_AS(loop->run(run_fiber([] {
                         await(sleep_task(1ms));
                         throw std::runtime_error("late");
                       })),
                       "late", std::runtime_error);

  std::string caught;
  const int value = loop->run(run_fiber([&caught] {
    try {
      await(fails_later());
    } catch (const std::logic_error& e) {
      caught = e.what();
    }
    return await(sleep_then(1ms, 7));  // The fiber carries on after handling it.
  }));
  CHECK(caught == "task failed");
  CHECK(value == 7);
  CHECK(loop->now() == TimePoint(3ms));
}

void fiber_ticker(std::vector<std::string>* log) {
  for (int i = 0; i < 3; ++i) {
    await(sleep_task(10ms));
    log->push_back("fiber@" + std::to_string(now_ms()));
  }
}

Task<void> task_ticker(std::vector<std::string>* log) {
  for (int i = 0; i < 6; ++i) {
    co_await sleep_for(5ms);
    log->push_back("task@" + std::to_string(now_ms()));
  }
}

Task<void> fiber_and_task(std::vector<std::string>* log) {
  std::vector<Task<void>> tasks;
  tasks.push_back(run_fiber([log] { fiber_ticker(log); }));
  tasks.push_back(task_ticker(log));
  co_await when_all(std::move(tasks));
}

TEST_CASE("await(sleep) in a fiber advances virtual time and interleaves deterministically") {
  // Goal: a fiber's sleeps are ordinary loop timers: same order as tasks' (deadline, then
  // arming order), the same trace for the same seed, and no real time spent.
  std::vector<std::string> first;
  std::uint64_t first_hash = 0;
  {
    auto loop = Loop::simulated({.seed = 3});
    loop->run(fiber_and_task(&first));
    CHECK(loop->now() == TimePoint(30ms));
    first_hash = loop->trace_hash();
  }
  CHECK(first == std::vector<std::string>{"task@5", "fiber@10", "task@10", "task@15", "fiber@20",
                                          "task@20", "task@25", "fiber@30", "task@30"});
  std::vector<std::string> second;
  auto loop = Loop::simulated({.seed = 3});
  loop->run(fiber_and_task(&second));
  CHECK(second == first);
  CHECK(loop->trace_hash() == first_hash);
}

struct Census {
  int live = 0;
  int peak = 0;
  std::vector<int> finished;
};

void census_worker(Census* census, int id) {
  census->peak = std::max(census->peak, ++census->live);
  Loop& loop = Loop::current();
  for (int round = 0; round < 3; ++round)
    await(sleep_task(std::chrono::microseconds(loop.rng().uniform(0, 1000))));
  --census->live;
  census->finished.push_back(id);
}

Task<void> many_fibers(Census* census, int n) {
  Scope scope;
  for (int id = 0; id < n; ++id) scope.spawn(run_fiber([census, id] { census_worker(census, id); }));
  co_await scope.join();
}

std::vector<int> finishing_order(std::uint64_t seed, int* peak) {
  Census census;
  auto loop = Loop::simulated({.seed = seed});
  loop->run(many_fibers(&census, 1000));
  *peak = census.peak;
  CHECK(census.live == 0);
  return census.finished;
}

TEST_CASE("a thousand fibers run concurrently, deterministically by seed") {
  // Goal: fibers are cheap enough to have 1000 parked at once, and scheduling stays a
  // function of the seed.
  int peak = 0;
  const std::vector<int> order = finishing_order(11, &peak);
  CHECK(peak == 1000);
  REQUIRE(order.size() == 1000);
  int again_peak = 0;
  CHECK(finishing_order(11, &again_peak) == order);
  std::vector<int> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int id = 0; id < 1000; ++id) CHECK(sorted[static_cast<std::size_t>(id)] == id);
}

struct CancelProbe {
  bool saw_cancelled = false;
  bool token_cancelled = false;
  bool next_await_cancelled = false;
};

void parked_for_an_hour(CancelProbe* probe) {
  try {
    await(sleep_task(1h));
  } catch (const Cancelled&) {
    probe->saw_cancelled = true;
  }
  probe->token_cancelled = fiber_cancel_token().cancelled();
  try {
    await(sleep_task(1ms));  // Still cancelled: fails at once, without waiting.
  } catch (const Cancelled&) {
    probe->next_await_cancelled = true;
  }
  throw Cancelled{};
}

Task<void> cancel_through_scope(CancelProbe* probe) {
  Scope scope;
  scope.spawn(run_fiber([probe] { parked_for_an_hour(probe); }));
  co_await sleep_for(5ms);
  co_await scope.close();
}

TEST_CASE("cancelling the awaiting task reaches an await inside the fiber as Cancelled") {
  // Goal: the fiber inherits its task's token; cancellation wakes the parked await at once.
  auto loop = Loop::simulated();
  CancelProbe probe;
  loop->run(cancel_through_scope(&probe));
  CHECK(probe.saw_cancelled);
  CHECK(probe.token_cancelled);
  CHECK(probe.next_await_cancelled);
  CHECK(loop->now() == TimePoint(5ms));
  CHECK(loop->timer_count() == 0);
}

int sleeps_an_hour() {
  await(sleep_task(1h));
  return 1;
}

Task<std::size_t> race_fiber_against_timer() {
  std::vector<Task<int>> tasks;
  tasks.push_back(run_fiber(&sleeps_an_hour));
  tasks.push_back(sleep_then(5ms, 2));
  AnyResult<int> winner = co_await when_any(std::move(tasks));
  co_return winner.index;
}

TEST_CASE("when_any cancels a losing fiber") {
  // Goal: a fiber is a task like any other to combinators: the loser is cancelled and joined.
  auto loop = Loop::simulated();
  CHECK(loop->run(race_fiber_against_timer()) == 1);
  CHECK(loop->now() == TimePoint(5ms));
  CHECK(loop->timer_count() == 0);
}

void fiber_yielder(std::vector<std::string>* log, char name) {
  for (int i = 0; i < 3; ++i) {
    log->push_back(std::string(1, name) + std::to_string(i));
    fiber_yield();
  }
}

Task<void> task_yielder(std::vector<std::string>* log, char name) {
  for (int i = 0; i < 3; ++i) {
    log->push_back(std::string(1, name) + std::to_string(i));
    co_await yield();
  }
}

Task<void> yielders(std::vector<std::string>* log) {
  std::vector<Task<void>> tasks;
  tasks.push_back(run_fiber([log] { fiber_yielder(log, 'a'); }));
  tasks.push_back(run_fiber([log] { fiber_yielder(log, 'b'); }));
  tasks.push_back(task_yielder(log, 'c'));
  co_await when_all(std::move(tasks));
}

TEST_CASE("fiber_yield lets every other ready task run, then continues") {
  // Goal: fibers and tasks take turns in round-robin order, with no time passing.
  auto loop = Loop::simulated();
  std::vector<std::string> log;
  loop->run(yielders(&log));
  CHECK(log == std::vector<std::string>{"a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"});
  CHECK(loop->now() == TimePoint{});
}

Task<int> leaf(int x) {
  co_await sleep_for(1ms);
  co_return x * 2;
}

Task<int> middle(int x) {
  const int a = co_await leaf(x);
  const int b = co_await leaf(a);
  co_return a + b;
}

int inner_fiber() { return await(middle(1)) + 1; }  // 2 + 4 + 1

TEST_CASE("await of a task that itself awaits, and a fiber awaiting a fiber") {
  // Goal: nesting works both ways: task chains under a fiber, and fibers under fibers.
  auto loop = Loop::simulated();
  CHECK(loop->run(run_fiber([] { return await(middle(3)); })) == 6 + 12);
  CHECK(loop->now() == TimePoint(2ms));
  CHECK(loop->run(run_fiber([] {
          const int inner = await(run_fiber(&inner_fiber));
          CHECK(in_fiber());
          return inner * 10;
        })) == 70);
  CHECK(loop->now() == TimePoint(4ms));
}

Task<int> ready_value(int x) { co_return x; }

long sum_of_ready_awaits(int n) {
  long sum = 0;
  for (int i = 0; i < n; ++i) sum += await(ready_value(1));
  return sum;
}

TEST_CASE("awaits that complete at once cost no stack on either side") {
  // Goal: each await is one round trip between the fiber and its driver, not a nesting
  // level: 100k of them fit in the default stack, with no loop turn and no time spent.
  auto loop = Loop::simulated();
  CHECK(loop->run(run_fiber([] { return sum_of_ready_awaits(100'000); })) == 100'000);
  CHECK(loop->now() == TimePoint{});
}

TEST_CASE("a deadlocked run unwinds a parked fiber's stack") {
  // Goal: destroying the task of a fiber parked in await() runs the fiber's destructors and
  // frees its captures; nothing leaks.
  Counted::live = 0;
  {
    auto loop = Loop::simulated();
    Event never;
    Counted captured;
    bool after_await = false;
    CHECK_THROWS_AS(loop->run(run_fiber([&never, &after_await, captured] {
                      Counted on_stack;
                      await(wait_event(&never));
                      after_await = true;
                    })),
                    Deadlock);
    CHECK_FALSE(after_await);
    CHECK(Counted::live == 1);  // Only `captured` is left.
  }
  CHECK(Counted::live == 0);
}

}  // namespace
}  // namespace uraft
