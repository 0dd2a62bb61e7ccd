#include "raft/durable_writer.h"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "core/assert.h"

namespace uraft {

bool hard_state_covers(const HardState& durable, const HardState& wanted) noexcept {
  if (durable.current_term != wanted.current_term) {
    return durable.current_term > wanted.current_term;
  }
  return wanted.voted_for == kNoNode || durable.voted_for == wanted.voted_for;
}

void DurableWriter::recovered(const HardState& hard_state) noexcept {
  hard_issued_ = hard_durable_ = hard_state;
  stored_match_ = stored_last_ = log_durable_ = log_.last_index();
  snapshot_durable_ = log_.snapshot_index();
}

void DurableWriter::stop() noexcept {
  stopped_ = true;
  published();
}

void DurableWriter::published() noexcept {
  published_.set();
  published_.reset();
}

Task<void> DurableWriter::run() {
  try {
    for (;;) {
      // Hard state first: nothing the log or a snapshot says may be durable before the term
      // it was written in.
      const HardState wanted{term_, vote_};
      if (!hard_state_covers(hard_issued_, wanted)) {
        co_await write_hard_state(wanted);
      } else if (!snapshots_.empty()) {
        // Before any log write: the log's prefix up to the snapshot may be gone from memory.
        PendingSnapshot pending = std::move(snapshots_.front());
        snapshots_.pop_front();
        co_await write_snapshot(std::move(pending));
      } else if (log_behind()) {
        co_await write_log();
      } else {
        work_.reset();
        co_await work_.wait();
        continue;
      }
      published();
    }
  } catch (...) {
    stop();
    throw;
  }
}

Task<void> DurableWriter::write_hard_state(HardState state) {
  URAFT_ASSERT(state.current_term >= hard_issued_.current_term);
  hard_issued_ = state;
  co_await storage_.save_hard_state(state);
  // One write at a time, completed in order: this is now the durable hard state.
  hard_durable_ = state;
}

Task<void> DurableWriter::write_snapshot(PendingSnapshot pending) {
  const LogIndex index = pending.record.last_included_index;
  URAFT_ASSERT(index > snapshot_durable_);
  // Storage's log may not agree with ours up to the snapshot (a cut not yet rewritten: it
  // holds another leader's entries there); then nothing it holds past the snapshot is known
  // to be ours either. Drop it all; the log write that follows brings ours.
  if (stored_match_ < index) pending.action = SnapshotLogAction::kDiscardLog;
  // Storage's log once this save is done (Storage::save_snapshot).
  if (pending.action == SnapshotLogAction::kDiscardLog) {
    stored_match_ = stored_last_ = index;
  } else {
    stored_match_ = std::max(stored_match_, index);
    stored_last_ = std::max(stored_last_, index);
  }
  co_await storage_.save_snapshot(std::move(pending.record), pending.action);
  // A snapshot holds only committed entries, which no cut reaches: everything up to it is
  // durable and agrees with the log.
  snapshot_durable_ = index;
  log_durable_ = std::max(log_durable_, index);
}

bool DurableWriter::log_behind() const noexcept {
  return stored_match_ < log_.last_index() || stored_last_ != log_.last_index();
}

Task<void> DurableWriter::write_log() {
  const LogIndex last = log_.last_index();
  // Every snapshot is issued before any log write, so what storage lacks is still in memory.
  URAFT_ASSERT(stored_match_ >= log_.snapshot_index());
  const LogIndex first{stored_match_.value + 1};
  std::vector<LogEntry> entries =
      log_.slice(first, LogIndex{last.value + 1}, std::numeric_limits<std::size_t>::max());
  URAFT_ASSERT(entries.size() == last.value + 1 - first.value);
  stored_match_ = stored_last_ = last;
  write_limit_ = last;
  ++log_writes_;
  log_entries_written_ += entries.size();
  co_await storage_.append(first, std::move(entries));
  log_durable_ = std::max(log_durable_, write_limit_);
}

void DurableWriter::log_cut(LogIndex from) noexcept {
  URAFT_ASSERT(from > LogIndex{0});
  const LogIndex kept{from.value - 1};
  stored_match_ = std::min(stored_match_, kept);
  log_durable_ = std::min(log_durable_, kept);
  write_limit_ = std::min(write_limit_, kept);
  wake();
}

void DurableWriter::queue_snapshot(SnapshotRecord snapshot, SnapshotLogAction action) {
  URAFT_ASSERT(snapshots_.empty() ||
               snapshot.last_included_index > snapshots_.back().record.last_included_index);
  snapshots_.push_back(PendingSnapshot{std::move(snapshot), action});
  wake();
}

Task<void> DurableWriter::next_write() {
  if (!stopped_) co_await published_.wait();
}

Task<void> DurableWriter::log_durable_to(LogIndex index) {
  while (!stopped_ && log_durable_ < index) co_await published_.wait();
}

Task<void> DurableWriter::snapshot_durable_to(LogIndex index) {
  while (!stopped_ && snapshot_durable_ < index) co_await published_.wait();
}

}  // namespace uraft
