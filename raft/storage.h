// Storage: what a Raft peer keeps across crashes — hard state (current term, vote), the log
// above the snapshot, and the latest snapshot. Writes are Tasks so a write-ahead log can make
// them durable asynchronously; a Node awaits a write before sending anything that depends on
// it ("persist before send").
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/task.h"
#include "net/message.h"
#include "net/types.h"
#include "raft/snapshot_data.h"

namespace uraft {

// Figure 2, "Persistent state on all servers": currentTerm and votedFor.
struct HardState {
  Term current_term;
  NodeId voted_for = kNoNode;  // The candidate voted for in current_term, kNoNode if none.

  friend bool operator==(const HardState&, const HardState&) = default;
};

// A snapshot of the service's state (Figure 13): everything up to and including
// last_included_index, whose entry had last_included_term.
struct SnapshotRecord {
  LogIndex last_included_index;
  Term last_included_term;
  SnapshotData data;  // Opaque to Raft: the service's bytes.

  friend bool operator==(const SnapshotRecord&, const SnapshotRecord&) = default;
};

// Everything a restarted peer reads back: entries[0] is at index snapshot's
// last_included_index + 1 (or 1 without a snapshot).
struct RecoveredState {
  HardState hard_state;
  std::optional<SnapshotRecord> snapshot;
  std::vector<LogEntry> entries;
};

// What save_snapshot does with the log entries after the snapshot (Figure 13, receiver 6-7).
enum class SnapshotLogAction : std::uint8_t {
  kKeepSuffix,  // The log matches at the snapshot index: drop entries up to it, keep the rest.
  kDiscardLog,  // Drop every entry: the snapshot replaces the whole log.
};

// The contract every implementation keeps (MemStorage, later SimStorage and WalStorage):
// - Order: a write is ordered when its Task is first awaited, before that Task first
//   suspends, even if the awaiting task is cancelled at that moment; only the wait for
//   durability is cancellable. Writes take effect in that order.
// - Durability: a write's Task completes once it, and every write ordered before it, is
//   durable. After a crash, load() returns the state some prefix of the writes produced,
//   and at least every completed write.
// - Atomicity: each write is all or nothing.
// A Storage is used by one Node at a time, on that node's loop.
class Storage {
 public:
  virtual ~Storage() = default;

  // The state as of the last durable write (empty for a new peer).
  virtual Task<RecoveredState> load() = 0;

  virtual Task<void> save_hard_state(HardState state) = 0;

  // Replaces the log from `first` on with `entries` (first <= last stored index + 1; entries
  // at or after `first` are dropped first). `first` is above the snapshot index.
  virtual Task<void> append(LogIndex first, std::vector<LogEntry> entries) = 0;

  // Stores `snapshot` in place of any older one and drops the entries it covers (all of them
  // if the log ends at or before its index: a peer's newest entries may not be written yet),
  // and with kDiscardLog every entry after it too. A snapshot not newer than the stored one
  // is a bug.
  virtual Task<void> save_snapshot(SnapshotRecord snapshot, SnapshotLogAction action) = 0;

  // Where to write a snapshot of everything up to `index` (whose entry has `term`) before
  // saving it: a follower streams a leader's chunks into it, a service its state. What it
  // finishes with is saved by save_snapshot like any SnapshotData, most cheaply here (a
  // WalStorage sink's file becomes the snapshot file). Default: in memory.
  virtual std::unique_ptr<SnapshotSink> snapshot_sink(LogIndex index, Term term);
};

}  // namespace uraft
