#include "core/cancel.h"

namespace uraft {

void CancelCallback::reset() noexcept {
  if (source_ == nullptr) return;
  (prev_ != nullptr ? prev_->next_ : source_->head_) = next_;
  (next_ != nullptr ? next_->prev_ : source_->tail_) = prev_;
  source_ = nullptr;
  prev_ = next_ = nullptr;
}

bool CancelToken::register_callback(CancelCallback& cb, CancelCallback::Fn fn,
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

void CancelSource::link_to(CancelToken parent) noexcept {
  parent_link_.reset();
  if (!parent.register_callback(parent_link_, &CancelSource::on_parent_cancel, this))
    cancelled_ = true;
}

void CancelSource::request_cancel() noexcept {
  if (cancelled_) return;
  cancelled_ = true;
  // A callback may unregister others (or itself); pop one at a time.
  while (head_ != nullptr) {
    CancelCallback* cb = head_;
    cb->reset();
    cb->fn_(cb->ctx_);
  }
}

}  // namespace uraft
