// Channel<T>: a bounded FIFO between tasks on one loop. send() waits while the channel is
// full, receive() waits while it is empty; close() ends it: waiting receivers get nullopt
// once it is drained, senders get false. Values pass straight to a waiting receiver.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

#include "core/wait_list.h"

namespace uraft {

template <typename T>
class Channel {
 public:
  explicit Channel(std::size_t capacity) : capacity_(capacity) { URAFT_ASSERT(capacity > 0); }

  std::size_t size() const noexcept { return items_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }
  bool closed() const noexcept { return closed_; }

  // Non-blocking forms. try_send returns false if full or closed (and keeps `value`).
  bool try_send(T& value) {
    if (closed_) return false;
    if (WaitNode* node = receivers_.front()) {
      static_cast<ReceiveAwaiter*>(node)->slot_.emplace(std::move(value));
      receivers_.wake(*node);
      return true;
    }
    if (items_.size() >= capacity_) return false;
    items_.push_back(std::move(value));
    return true;
  }
  std::optional<T> try_receive() {
    if (items_.empty()) return std::nullopt;
    std::optional<T> value(std::move(items_.front()));
    items_.pop_front();
    if (WaitNode* node = senders_.front()) {  // Room now: admit the oldest waiting sender.
      items_.push_back(std::move(static_cast<SendAwaiter*>(node)->value_));
      static_cast<SendAwaiter*>(node)->accepted_ = true;
      senders_.wake(*node);
    }
    return value;
  }

  // Wakes everyone: receivers drain what is left, then get nullopt; senders get false.
  void close() noexcept {
    closed_ = true;
    receivers_.wake_all();
    senders_.wake_all();
  }

  class [[nodiscard]] SendAwaiter : public WaitNode {
   public:
    SendAwaiter(Channel& ch, T value) : ch_(ch), value_(std::move(value)) {}
    bool await_ready() { return (accepted_ = ch_.try_send(value_)) || ch_.closed_; }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      return enqueue(ch_.senders_, h);
    }
    // True if the value was accepted, false if the channel was closed. Cancellable.
    bool await_resume() {
      finish();
      return accepted_;
    }

   private:
    friend class Channel;
    Channel& ch_;
    T value_;
    bool accepted_ = false;
  };

  class [[nodiscard]] ReceiveAwaiter : public WaitNode {
   public:
    explicit ReceiveAwaiter(Channel& ch) : ch_(ch) {}
    bool await_ready() {
      slot_ = ch_.try_receive();
      return slot_.has_value() || ch_.closed_;
    }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      return enqueue(ch_.receivers_, h);
    }
    // The next value, or nullopt once the channel is closed and drained. Cancellable.
    std::optional<T> await_resume() {
      finish();
      if (!slot_ && !ch_.items_.empty()) slot_ = ch_.try_receive();  // Woken by close().
      return std::move(slot_);
    }

   private:
    friend class Channel;
    Channel& ch_;
    std::optional<T> slot_;
  };

  SendAwaiter send(T value) { return SendAwaiter(*this, std::move(value)); }
  ReceiveAwaiter receive() { return ReceiveAwaiter(*this); }

 private:
  std::size_t capacity_;
  std::deque<T> items_;
  WaitList receivers_;
  WaitList senders_;
  bool closed_ = false;
};

}  // namespace uraft
