// DurableWriter: the one task that writes a node's durable state, and the watermarks that say
// how far that state is durable. Everything that changes what storage must hold (a new term or
// vote, new or truncated log entries, a snapshot) changes memory first, synchronously; the
// writer then brings storage in line, one write at a time (hard state first, then snapshots,
// then the log), and publishes after each completed write:
//   hard_durable()   the hard state as of the last completed save;
//   log_durable()    storage's durable log agrees with the node's log up to this index (a
//                    completed snapshot counts for everything up to its index);
//   snapshot_durable()  the index of the last snapshot whose save completed.
// Every reply that claims durability (a vote, an AppendEntries success, an InstallSnapshot
// ack) and the leader's count of itself wait for the watermark that covers the claim, however
// many tasks asked for the same write. Writes issued before a truncation never raise
// log_durable() past it: what they wrote there is no longer the node's log.
//
// Owner: the node. The watermarks and the stored view change only in the writer's task (after
// each write) and in the node's synchronous mutators (log_cut, queue_snapshot); waiters
// re-check them after every wake-up.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "core/event.h"
#include "core/task.h"
#include "net/types.h"
#include "raft/log.h"
#include "raft/storage.h"

namespace uraft {

// Whether durable hard state `durable` makes `wanted` safe to claim: a newer term (the node
// can never act in wanted's term again), or the same term with the same vote (or none wanted).
[[nodiscard]] bool hard_state_covers(const HardState& durable, const HardState& wanted) noexcept;

class DurableWriter {
 public:
  // What the writer reads to know what storage should hold: the node's term, vote and log.
  DurableWriter(Storage& storage, const Term& term, const NodeId& vote, const RaftLog& log)
      : storage_(storage), term_(term), vote_(vote), log_(log) {}
  DurableWriter(const DurableWriter&) = delete;
  DurableWriter& operator=(const DurableWriter&) = delete;

  // What storage held at start, all of it durable: `hard_state`, and the log as it is now.
  void recovered(const HardState& hard_state) noexcept;
  // Writes until cancelled (the node's kill()); then stop() releases every waiter.
  Task<void> run();
  // The node stops: waiters return (their callers see the node stopping and send nothing).
  void stop() noexcept;
  // The term, vote or log changed: the writer looks again.
  void wake() noexcept { work_.set(); }

  // --- synchronous changes of the node's log that storage must learn of ---
  // The log lost its entries from `from` on (a conflict, or a log replaced by a snapshot).
  void log_cut(LogIndex from) noexcept;
  // `snapshot` replaces the log up to its index (kDiscardLog: all of it); saved in order.
  void queue_snapshot(SnapshotRecord snapshot, SnapshotLogAction action);

  // --- watermarks ---
  const HardState& hard_durable() const noexcept { return hard_durable_; }
  LogIndex log_durable() const noexcept { return log_durable_; }
  LogIndex snapshot_durable() const noexcept { return snapshot_durable_; }
  // The durable hard state covers `claim` and the log is durable up to `log_index`.
  bool covers(const HardState& claim, LogIndex log_index) const noexcept {
    return hard_state_covers(hard_durable_, claim) && log_durable_ >= log_index;
  }

  // Complete once the watermark covers the claim, or the writer stopped. Cancellable.
  Task<void> log_durable_to(LogIndex index);
  Task<void> snapshot_durable_to(LogIndex index);
  // Completes after the next completed write (or at stop()): for waiters whose claim is
  // more than one watermark, who re-check everything after each wake-up. Cancellable.
  Task<void> next_write();

  std::uint64_t log_writes() const noexcept { return log_writes_; }
  std::uint64_t log_entries_written() const noexcept { return log_entries_written_; }

 private:
  struct PendingSnapshot {
    SnapshotRecord record;
    SnapshotLogAction action;
  };

  Task<void> write_hard_state(HardState state);
  Task<void> write_snapshot(PendingSnapshot pending);
  Task<void> write_log();
  bool log_behind() const noexcept;
  void published() noexcept;  // Wakes every waiter to re-check.

  Storage& storage_;
  const Term& term_;
  const NodeId& vote_;
  const RaftLog& log_;

  HardState hard_issued_;   // The last save issued.
  HardState hard_durable_;  // The last save completed.
  // Storage's log once every issued write is done: it agrees with log_ up to stored_match_
  // and ends at stored_last_. Entries of log_ after stored_match_ are not written yet.
  LogIndex stored_match_;
  LogIndex stored_last_;
  LogIndex log_durable_;
  // The write in flight may raise log_durable_ no further than this (a cut lowers it).
  LogIndex write_limit_;
  LogIndex snapshot_durable_;
  std::deque<PendingSnapshot> snapshots_;  // Queued, not yet issued, oldest first.

  Event work_;       // Set when memory may be ahead of storage.
  Event published_;  // Set (and reset) after each completed write and at stop().
  bool stopped_ = false;
  std::uint64_t log_writes_ = 0;
  std::uint64_t log_entries_written_ = 0;
};

}  // namespace uraft
