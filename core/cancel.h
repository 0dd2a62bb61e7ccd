// Cancellation for tasks on one loop: a CancelSource is requested once; every awaitable
// registers a CancelCallback on its task's CancelToken while it is suspended, and the
// callback makes it resume early. Cancellation then surfaces as a `Cancelled` exception,
// the one error that travels as an exception. Single-threaded: no atomics.
#pragma once

#include <exception>

#include "core/assert.h"

namespace uraft {

struct Cancelled : std::exception {
  const char* what() const noexcept override { return "cancelled"; }
};

class CancelSource;

// A registration on a source; unregisters itself when destroyed. Not movable: the source
// holds its address.
class CancelCallback {
 public:
  using Fn = void (*)(void* ctx) noexcept;

  CancelCallback() = default;
  CancelCallback(const CancelCallback&) = delete;
  CancelCallback& operator=(const CancelCallback&) = delete;
  ~CancelCallback() { reset(); }

  // Unregisters (a no-op when not registered).
  void reset() noexcept;
  bool registered() const noexcept { return source_ != nullptr; }

 private:
  friend class CancelSource;
  friend class CancelToken;
  CancelSource* source_ = nullptr;
  CancelCallback* prev_ = nullptr;
  CancelCallback* next_ = nullptr;
  Fn fn_ = nullptr;
  void* ctx_ = nullptr;
};

// A cheap handle to a source, or to nothing (never cancelled).
class CancelToken {
 public:
  CancelToken() = default;
  explicit CancelToken(CancelSource* source) : source_(source) {}

  bool cancelled() const noexcept;
  bool can_be_cancelled() const noexcept { return source_ != nullptr; }

  // Registers `fn(ctx)` to run when cancellation is requested. Returns false (and registers
  // nothing) if it already was: the caller must then act as cancelled itself.
  bool register_callback(CancelCallback& cb, CancelCallback::Fn fn, void* ctx) const noexcept;

  // Throws Cancelled if cancellation was requested.
  void throw_if_cancelled() const {
    if (cancelled()) throw Cancelled{};
  }

 private:
  CancelSource* source_ = nullptr;
};

class CancelSource {
 public:
  CancelSource() = default;
  // A child source: cancelled when `parent` is (and also on its own).
  explicit CancelSource(CancelToken parent) noexcept { link_to(parent); }
  CancelSource(const CancelSource&) = delete;
  CancelSource& operator=(const CancelSource&) = delete;
  ~CancelSource() { URAFT_ASSERT(head_ == nullptr); }

  void link_to(CancelToken parent) noexcept;

  // Runs every registered callback once, in registration order. Idempotent.
  void request_cancel() noexcept;
  bool cancelled() const noexcept { return cancelled_; }
  CancelToken token() noexcept { return CancelToken(this); }

 private:
  friend class CancelCallback;
  friend class CancelToken;
  static void on_parent_cancel(void* self) noexcept {
    static_cast<CancelSource*>(self)->request_cancel();
  }

  bool cancelled_ = false;
  CancelCallback* head_ = nullptr;
  CancelCallback* tail_ = nullptr;
  CancelCallback parent_link_;
};

inline bool CancelToken::cancelled() const noexcept {
  return source_ != nullptr && source_->cancelled_;
}

// register_callback() and reset() run on every suspension of every awaitable (an I/O
// round trip does one of each, and the awaiter's destructor a second reset): they are
// inline so that an await costs a few list-pointer writes, not two calls into the library.
inline void CancelCallback::reset() noexcept {
  if (source_ == nullptr) return;
  (prev_ != nullptr ? prev_->next_ : source_->head_) = next_;
  (next_ != nullptr ? next_->prev_ : source_->tail_) = prev_;
  source_ = nullptr;
}

inline bool CancelToken::register_callback(CancelCallback& cb, CancelCallback::Fn fn,
                                           void* ctx) const noexcept {
  URAFT_ASSERT(!cb.registered());
  if (source_ == nullptr) return true;  // Never cancelled: nothing to register.
  if (source_->cancelled_) return false;
  cb.source_ = source_;
  cb.fn_ = fn;
  cb.ctx_ = ctx;
  cb.prev_ = source_->tail_;
  cb.next_ = nullptr;
  (source_->tail_ != nullptr ? source_->tail_->next_ : source_->head_) = &cb;
  source_->tail_ = &cb;
  return true;
}

}  // namespace uraft
