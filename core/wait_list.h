// The waiting side shared by Event, Semaphore and Channel: an intrusive FIFO of suspended
// awaiters. A waiter is woken by being unlinked and scheduled on the loop (never resumed
// inline, so waking never runs another task's code inside the waker). A cancelled waiter
// unlinks itself and resumes with Cancelled.
#pragma once

#include <coroutine>

#include "core/cancel.h"
#include "core/loop.h"

namespace uraft {

class WaitList;

class WaitNode {
 public:
  WaitNode() = default;
  WaitNode(const WaitNode&) = delete;
  WaitNode& operator=(const WaitNode&) = delete;
  // A frame destroyed while suspended (a deadlocked run torn down) leaves no dangling link.
  ~WaitNode();

  bool linked() const noexcept { return list_ != nullptr; }

 protected:
  // Links this node to `list` for the coroutine `h`; returns false (and links nothing)
  // if h's task is already cancelled.
  template <typename Promise>
  bool enqueue(WaitList& list, std::coroutine_handle<Promise> h);
  // After resumption: throws Cancelled if the wait was cancelled rather than granted.
  void finish() {
    cancel_.reset();
    if (cancelled_) throw Cancelled{};
  }

 private:
  friend class WaitList;
  static void on_cancel(void* self) noexcept;

  WaitList* list_ = nullptr;
  WaitNode* prev_ = nullptr;
  WaitNode* next_ = nullptr;
  std::coroutine_handle<> waiter_;
  CancelCallback cancel_;
  bool cancelled_ = false;
};

class WaitList {
 public:
  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  ~WaitList() { URAFT_ASSERT(head_ == nullptr); }

  bool empty() const noexcept { return head_ == nullptr; }
  WaitNode* front() const noexcept { return head_; }

  // Unlinks `node` and schedules its coroutine as granted.
  void wake(WaitNode& node) noexcept {
    unlink(node);
    node.cancel_.reset();
    Loop::current().schedule(node.waiter_);
  }
  void wake_all() noexcept {
    while (head_ != nullptr) wake(*head_);
  }

 private:
  friend class WaitNode;
  void push_back(WaitNode& node) noexcept {
    node.list_ = this;
    node.prev_ = tail_;
    node.next_ = nullptr;
    (tail_ != nullptr ? tail_->next_ : head_) = &node;
    tail_ = &node;
  }
  void unlink(WaitNode& node) noexcept {
    URAFT_ASSERT(node.list_ == this);
    (node.prev_ != nullptr ? node.prev_->next_ : head_) = node.next_;
    (node.next_ != nullptr ? node.next_->prev_ : tail_) = node.prev_;
    node.list_ = nullptr;
    node.prev_ = node.next_ = nullptr;
  }

  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
};

template <typename Promise>
bool WaitNode::enqueue(WaitList& list, std::coroutine_handle<Promise> h) {
  waiter_ = h;
  if (!token_of(h).register_callback(cancel_, &WaitNode::on_cancel, this)) {
    cancelled_ = true;
    return false;
  }
  list.push_back(*this);
  return true;
}

inline WaitNode::~WaitNode() {
  if (list_ != nullptr) list_->unlink(*this);
}

inline void WaitNode::on_cancel(void* self) noexcept {
  auto* node = static_cast<WaitNode*>(self);
  node->cancelled_ = true;
  node->list_->unlink(*node);
  Loop::current().schedule(node->waiter_);
}

}  // namespace uraft
