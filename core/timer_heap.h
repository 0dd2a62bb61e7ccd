// The loop's timers: an intrusive binary min-heap ordered by (deadline, sequence), so timers
// with equal deadlines fire in the order they were armed. O(log n) insert and removal.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/clock.h"

namespace uraft {

struct TimerNode {
  static constexpr std::size_t kNotArmed = ~std::size_t{0};

  TimePoint deadline;
  std::uint64_t seq = 0;
  std::size_t heap_index = kNotArmed;
  std::coroutine_handle<> waiter;

  bool armed() const noexcept { return heap_index != kNotArmed; }
};

class TimerHeap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  TimerNode* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }

  void push(TimerNode& node);
  void remove(TimerNode& node);
  TimerNode* pop();

 private:
  static bool before(const TimerNode* a, const TimerNode* b) noexcept {
    return a->deadline != b->deadline ? a->deadline < b->deadline : a->seq < b->seq;
  }
  void place(std::size_t i, TimerNode* node) noexcept {
    heap_[i] = node;
    node->heap_index = i;
  }
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;

  std::vector<TimerNode*> heap_;
};

}  // namespace uraft
