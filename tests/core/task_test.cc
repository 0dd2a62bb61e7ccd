// Task<T>: laziness, results, exceptions, and constant stack for long synchronous chains.
#include "core/task.h"

#include <doctest/doctest.h>

#include <stdexcept>

#include "core/loop.h"

namespace uraft {
namespace {

Task<int> answer() { co_return 42; }
Task<int> add_one(int x) { co_return x + 1; }
Task<void> throws() {
  throw std::runtime_error("boom");
  co_return;
}

int g_started = 0;
Task<void> counts_start() {
  ++g_started;
  co_return;
}

TEST_CASE("a task returns its value to the awaiter") {
  auto loop = Loop::simulated();
  CHECK(loop->run(answer()) == 42);
}

TEST_CASE("a task is lazy: it starts only when awaited") {
  g_started = 0;
  Task<void> t = counts_start();
  CHECK(g_started == 0);
  auto loop = Loop::simulated();
  loop->run(std::move(t));
  CHECK(g_started == 1);
}

TEST_CASE("an exception propagates to the awaiter") {
  auto loop = Loop::simulated();
  CHECK_THROWS_WITH_AS(loop->run(throws()), "boom", std::runtime_error);
}

Task<long> long_sync_chain(long n) {
  long sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await add_one(0);
  co_return sum;
}

TEST_CASE("10 million synchronously completing awaits run in constant stack") {
  // g++ 12 does not make symmetric transfer a tail call under ASan or at -O0; the inline
  // start in Task::Awaiter keeps this chain from growing the stack.
  auto loop = Loop::simulated();
  CHECK(loop->run(long_sync_chain(10'000'000)) == 10'000'000);
}

Task<int> nested(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await nested(depth - 1);
}

TEST_CASE("deep recursion of tasks works") {
  auto loop = Loop::simulated();
  CHECK(loop->run(nested(10'000)) == 10'000);
}

}  // namespace
}  // namespace uraft
