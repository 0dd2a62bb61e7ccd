// Combinators: when_all, when_any and when_quorum with successes, failures, exceptions and
// cancellation in every order; every child is joined before the combinator returns.
#include "core/when.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "core/loop.h"
#include "core/scope.h"

namespace uraft {
namespace {

// Counts live instances, so a test can prove every child's frame was destroyed.
struct Counted {
  static inline int live = 0;
  Counted() { ++live; }
  Counted(const Counted&) { ++live; }
  ~Counted() { --live; }
};

struct ChildLog {
  int started = 0;
  int finished = 0;
  int cancelled = 0;
};

// After `delay_ms`, returns `value`, or throws if `value` < 0.
Task<int> child(ChildLog* log, int delay_ms, int value) {
  Counted guard;
  ++log->started;
  try {
    co_await sleep_for(std::chrono::milliseconds(delay_ms));
  } catch (const Cancelled&) {
    ++log->cancelled;
    throw;
  }
  ++log->finished;
  if (value < 0) throw std::runtime_error("child failed");
  co_return value;
}

std::vector<Task<int>> children(ChildLog* log, std::vector<std::pair<int, int>> specs) {
  std::vector<Task<int>> tasks;
  for (auto [delay, value] : specs) tasks.push_back(child(log, delay, value));
  return tasks;
}

TEST_CASE("when_all returns every result in order") {
  auto loop = Loop::simulated();
  ChildLog log;
  auto results = loop->run(when_all(children(&log, {{30, 1}, {10, 2}, {20, 3}})));
  CHECK(results == std::vector<int>{1, 2, 3});
  CHECK(loop->now() == TimePoint(30ms));
  CHECK(Counted::live == 0);
}

TEST_CASE("when_all: the first failure cancels the others and is rethrown") {
  auto loop = Loop::simulated();
  ChildLog log;
  CHECK_THROWS_WITH(loop->run(when_all(children(&log, {{30, 1}, {10, -1}, {20, 3}}))),
                    "child failed");
  CHECK(log.cancelled == 2);
  CHECK(loop->now() == TimePoint(10ms));
  CHECK(Counted::live == 0);
}

TEST_CASE("when_any: the first to finish wins and the losers are cancelled") {
  auto loop = Loop::simulated();
  ChildLog log;
  auto result = loop->run(when_any(children(&log, {{30, 1}, {10, 2}, {20, 3}})));
  CHECK(result.index == 1);
  CHECK(result.value == 2);
  CHECK(log.cancelled == 2);
  CHECK(loop->now() == TimePoint(10ms));
  CHECK(Counted::live == 0);
}

TEST_CASE("when_any: a first finisher that throws decides, with its exception") {
  auto loop = Loop::simulated();
  ChildLog log;
  CHECK_THROWS_WITH(loop->run(when_any(children(&log, {{30, 1}, {10, -1}}))), "child failed");
  CHECK(log.cancelled == 1);
}

TEST_CASE("when_quorum: won once k succeed; the rest are cancelled") {
  auto loop = Loop::simulated();
  ChildLog log;
  auto q = loop->run(when_quorum(2, children(&log, {{30, 1}, {10, 2}, {20, 3}, {40, 4}})));
  CHECK(q.won);
  REQUIRE(q.successes.size() == 2);
  CHECK(q.successes[0] == std::pair<std::size_t, int>{1, 2});
  CHECK(q.successes[1] == std::pair<std::size_t, int>{2, 3});
  CHECK(log.cancelled == 2);
  CHECK(loop->now() == TimePoint(20ms));
  CHECK(Counted::live == 0);
}

TEST_CASE("when_quorum: lost as soon as k successes are impossible, in every order") {
  // 3 tasks, k = 2: two failures lose at once, whatever the order of events.
  const std::vector<std::vector<std::pair<int, int>>> orders = {
      {{10, -1}, {20, -1}, {30, 1}},
      {{10, 1}, {20, -1}, {30, -1}},
      {{30, 1}, {10, -1}, {20, -1}},
  };
  for (const auto& specs : orders) {
    auto loop = Loop::simulated();
    ChildLog log;
    auto q = loop->run(when_quorum(2, children(&log, specs)));
    CHECK_FALSE(q.won);
    CHECK(q.failures == 2);
    CHECK(q.last_error != nullptr);
    CHECK(loop->now() <= TimePoint(30ms));
    CHECK(Counted::live == 0);
  }
}

TEST_CASE("when_quorum: a predicate turns values into failures (vote counting)") {
  // Votes: 1 = granted, 0 = refused. Majority of 5 is 3.
  auto loop = Loop::simulated();
  ChildLog log;
  auto granted = [](int vote) { return vote == 1; };
  auto q = loop->run(
      when_quorum(3, children(&log, {{10, 0}, {20, 1}, {30, 0}, {40, 0}, {50, 1}}), granted));
  CHECK_FALSE(q.won);
  CHECK(q.failures == 3);
  CHECK(loop->now() == TimePoint(40ms));
  CHECK(log.cancelled == 1);
}

TEST_CASE("when_quorum with k = 0 wins at once") {
  auto loop = Loop::simulated();
  ChildLog log;
  auto q = loop->run(when_quorum(0, children(&log, {{10, 1}})));
  CHECK(q.won);
  CHECK(log.started == 0);
}

Task<void> await_quorum_of_three(ChildLog* log, bool* saw_cancelled) {
  // (A braced list inside a co_await expression trips g++ 12: build the vector first.)
  std::vector<Task<int>> votes = children(log, {{10, 1}, {20, 1}, {50, 1}, {60, 1}});
  try {
    (void)co_await when_quorum(3, std::move(votes));
  } catch (const Cancelled&) {
    *saw_cancelled = true;
  }
}

Task<void> quorum_under_cancel(ChildLog* log, bool* saw_cancelled) {
  Scope scope;
  scope.spawn(await_quorum_of_three(log, saw_cancelled));
  co_await sleep_for(25ms);  // Two votes in, quorum still pending.
  co_await scope.close();
}

TEST_CASE("when_quorum: cancelling the awaiter cancels and joins every child, then throws") {
  auto loop = Loop::simulated();
  ChildLog log;
  bool saw_cancelled = false;
  loop->run(quorum_under_cancel(&log, &saw_cancelled));
  CHECK(saw_cancelled);
  CHECK(log.finished == 2);
  CHECK(log.cancelled == 2);
  CHECK(loop->now() == TimePoint(25ms));
  CHECK(Counted::live == 0);
}

TEST_CASE("when_quorum: randomized orders agree with a reference count") {
  // Property: won iff at least k of n tasks succeed; decided at the k-th success or the
  // (n-k+1)-th failure, whichever comes first in time.
  Rng rng(99);
  for (int round = 0; round < 300; ++round) {
    const int n = static_cast<int>(rng.uniform(1, 7));
    const int k = static_cast<int>(rng.uniform(1, static_cast<std::uint64_t>(n)));
    std::vector<std::pair<int, int>> specs;
    std::vector<int> delays;
    for (int i = 0; i < n; ++i) {
      const int delay = static_cast<int>(rng.uniform(0, 1000)) * n + i;  // Distinct.
      specs.emplace_back(delay, rng.chance(1, 2) ? 1 : -1);
    }
    std::vector<std::pair<int, int>> by_time = specs;
    std::sort(by_time.begin(), by_time.end());
    int ok = 0, bad = 0, decided_at = 0;
    bool won = false;
    for (auto [delay, value] : by_time) {
      (value > 0 ? ok : bad) += 1;
      if (ok == k) { won = true; decided_at = delay; break; }
      if (bad > n - k) { decided_at = delay; break; }
    }
    auto loop = Loop::simulated();
    ChildLog log;
    auto q = loop->run(when_quorum(static_cast<std::size_t>(k), children(&log, specs)));
    CHECK(q.won == won);
    CHECK(loop->now() == TimePoint(std::chrono::milliseconds(decided_at)));
  }
  CHECK(Counted::live == 0);
}

}  // namespace
}  // namespace uraft
