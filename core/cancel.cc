#include "core/cancel.h"

namespace uraft {

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
