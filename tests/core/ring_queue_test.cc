// RingQueue: first in, first out across wrap-around and growth; storage kept when drained.
#include "core/ring_queue.h"

#include <doctest/doctest.h>

#include <deque>
#include <memory>

namespace uraft {
namespace {

TEST_CASE("ring queue pops in push order while it wraps around and grows") {
  // Goal: an interleaving of pushes and pops, wrapping and doubling, matches a std::deque.
  RingQueue<int> q;
  std::deque<int> ref;
  int next = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < round % 7 + 3; ++i) {  // Pushes outpace pops: it grows as it wraps.
      q.push_back(next);
      ref.push_back(next++);
    }
    for (int i = 0; i < round % 5 + 1 && !ref.empty(); ++i) {
      REQUIRE(q.front() == ref.front());
      CHECK(q.pop_front() == ref.front());
      ref.pop_front();
    }
    REQUIRE(q.size() == ref.size());
  }
  while (!ref.empty()) {
    CHECK(q.pop_front() == ref.front());
    ref.pop_front();
  }
  CHECK(q.empty());
}

TEST_CASE("ring queue keeps its storage when drained and holds move-only values") {
  // Goal: a steady state (push one, pop one) never grows past the first array.
  RingQueue<std::unique_ptr<int>> q;
  CHECK(q.capacity() == 0);
  for (int i = 0; i < 10'000; ++i) {
    q.push_back(std::make_unique<int>(i));
    CHECK(*q.pop_front() == i);
  }
  CHECK(q.empty());
  CHECK(q.capacity() == 64);
}

}  // namespace
}  // namespace uraft
