#include "core/timer_heap.h"

#include "core/assert.h"

namespace uraft {

void TimerHeap::push(TimerNode& node) {
  URAFT_ASSERT(!node.armed());
  heap_.push_back(&node);
  node.heap_index = heap_.size() - 1;
  sift_up(node.heap_index);
}

void TimerHeap::remove(TimerNode& node) {
  URAFT_ASSERT(node.armed());
  URAFT_ASSERT(heap_[node.heap_index] == &node);
  const std::size_t i = node.heap_index;
  TimerNode* last = heap_.back();
  heap_.pop_back();
  node.heap_index = TimerNode::kNotArmed;
  if (last == &node) return;
  place(i, last);
  sift_up(i);
  sift_down(last->heap_index);
}

TimerNode* TimerHeap::pop() {
  TimerNode* node = top();
  if (node != nullptr) remove(*node);
  return node;
}

void TimerHeap::sift_up(std::size_t i) noexcept {
  TimerNode* node = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!before(node, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, node);
}

void TimerHeap::sift_down(std::size_t i) noexcept {
  TimerNode* node = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(heap_[child + 1], heap_[child])) ++child;
    if (!before(heap_[child], node)) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, node);
}

}  // namespace uraft
