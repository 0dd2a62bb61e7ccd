// MemStorage: Storage in memory, with the lab Persister's semantics. A crash is modelled by
// copy(): the tester hands a restarted peer a copy, so whatever the crashed instance still
// writes to the old object is invisible to it. Writes are durable at once unless a
// write delay is set (to exercise the asynchronous paths of a Node in tests).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "raft/storage.h"

namespace uraft {

class MemStorage final : public Storage {
 public:
  MemStorage() = default;

  // A new, independent storage holding the same state (the Persister's Copy()).
  std::unique_ptr<MemStorage> copy() const;

  // Each write still takes effect when first awaited, but completes `delay` later.
  void set_write_delay(Duration delay) noexcept { write_delay_ = delay; }

  Task<RecoveredState> load() override;
  Task<void> save_hard_state(HardState state) override;
  Task<void> append(LogIndex first, std::vector<LogEntry> entries) override;
  Task<void> save_snapshot(SnapshotRecord snapshot, SnapshotLogAction action) override;

  // Synchronous reads for a tester (the Persister's ReadSnapshot / RaftStateSize).
  const std::optional<SnapshotRecord>& snapshot() const noexcept { return snapshot_; }
  const HardState& hard_state() const noexcept { return hard_state_; }
  LogIndex last_index() const noexcept;
  // The bytes the hard state and log would take in a compact encoding (varint term and
  // vote; per entry a varint term, a varint length and the command): the lab's LogSize().
  std::size_t raft_state_size() const noexcept;
  std::size_t snapshot_size() const noexcept { return snapshot_ ? snapshot_->data.size() : 0; }
  std::uint64_t writes() const noexcept { return writes_; }

 private:
  LogIndex base_index() const noexcept {
    return snapshot_ ? snapshot_->last_included_index : LogIndex{0};
  }
  Task<void> complete_write();

  HardState hard_state_;
  std::optional<SnapshotRecord> snapshot_;
  std::vector<LogEntry> entries_;  // entries_[0] is at base_index() + 1.
  Duration write_delay_{0};
  std::uint64_t writes_ = 0;
};

}  // namespace uraft
