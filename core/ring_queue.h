// RingQueue<T>: a FIFO in one power-of-two array that doubles when full, for the loop's
// ready queue. A push or a pop is an index mask and one store or load; std::deque also
// walks its block map and allocates a block every 512 bytes it moves through. The array is
// kept when the queue drains, so a loop in a steady state allocates nothing to schedule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "core/assert.h"

namespace uraft {

template <typename T>
class RingQueue {
 public:
  RingQueue() = default;
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;

  bool empty() const noexcept { return head_ == tail_; }
  std::size_t size() const noexcept { return static_cast<std::size_t>(tail_ - head_); }
  std::size_t capacity() const noexcept { return capacity_; }

  void push_back(T value) {
    if (size() == capacity_) grow();
    slots_[tail_++ & (capacity_ - 1)] = std::move(value);
  }

  T pop_front() noexcept {
    URAFT_ASSERT(!empty());
    return std::move(slots_[head_++ & (capacity_ - 1)]);
  }

  const T& front() const noexcept {
    URAFT_ASSERT(!empty());
    return slots_[head_ & (capacity_ - 1)];
  }

 private:
  // Room for what a small loop holds at once without growing.
  static constexpr std::size_t kInitialCapacity = 64;
  static_assert((kInitialCapacity & (kInitialCapacity - 1)) == 0, "masking needs a power of two");

  // Cold: moves the elements, oldest first, to the start of an array twice as large.
  [[gnu::noinline]] void grow() {
    const std::size_t n = size();
    const std::size_t capacity = capacity_ == 0 ? kInitialCapacity : capacity_ * 2;
    auto slots = std::make_unique<T[]>(capacity);
    for (std::size_t i = 0; i < n; ++i) slots[i] = std::move(slots_[(head_ + i) & (capacity_ - 1)]);
    slots_ = std::move(slots);
    capacity_ = capacity;
    head_ = 0;
    tail_ = n;
  }

  std::unique_ptr<T[]> slots_;
  std::size_t capacity_ = 0;  // 0 or a power of two.
  // Free-running counters: the slot is the counter masked by capacity_ - 1, the size their
  // difference (64 bits never wrap in practice).
  std::uint64_t head_ = 0;
  std::uint64_t tail_ = 0;
};

}  // namespace uraft
