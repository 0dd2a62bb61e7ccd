#include "raft/mem_storage.h"

#include <utility>

#include "core/assert.h"
#include "core/loop.h"
#include "net/varint.h"

namespace uraft {

std::unique_ptr<MemStorage> MemStorage::copy() const {
  auto c = std::make_unique<MemStorage>();
  c->hard_state_ = hard_state_;
  c->snapshot_ = snapshot_;
  c->entries_ = entries_;
  c->write_delay_ = write_delay_;
  return c;
}

LogIndex MemStorage::last_index() const noexcept {
  return LogIndex{base_index().value + entries_.size()};
}

std::size_t MemStorage::raft_state_size() const noexcept {
  std::size_t bytes = varint_bytes(hard_state_.current_term.value) +
                      varint_bytes(std::uint64_t{hard_state_.voted_for.value} + 1);
  for (const LogEntry& e : entries_) {
    bytes += varint_bytes(e.term.value) + varint_bytes(e.command.size()) + e.command.size();
  }
  return bytes;
}

Task<void> MemStorage::complete_write() {
  ++writes_;
  if (write_delay_ > Duration::zero()) co_await sleep_for(write_delay_);
}

Task<RecoveredState> MemStorage::load() {
  co_return RecoveredState{hard_state_, snapshot_, entries_};
}

Task<void> MemStorage::save_hard_state(HardState state) {
  URAFT_ASSERT(state.current_term >= hard_state_.current_term);
  hard_state_ = state;
  co_await complete_write();
}

Task<void> MemStorage::append(LogIndex first, std::vector<LogEntry> entries) {
  URAFT_ASSERT(first > base_index());
  URAFT_ASSERT(first.value <= last_index().value + 1);
  entries_.resize(first.value - base_index().value - 1);
  for (LogEntry& e : entries) entries_.push_back(std::move(e));
  co_await complete_write();
}

Task<void> MemStorage::save_snapshot(SnapshotRecord snapshot, SnapshotLogAction action) {
  const LogIndex index = snapshot.last_included_index;
  URAFT_ASSERT(index > base_index());
  if (action == SnapshotLogAction::kDiscardLog || index >= last_index()) {
    entries_.clear();
  } else {
    const std::size_t covered = index.value - base_index().value;
    URAFT_ASSERT(entries_[covered - 1].term == snapshot.last_included_term);
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(covered));
  }
  snapshot_ = std::move(snapshot);
  co_await complete_write();
}

}  // namespace uraft
