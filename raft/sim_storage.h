// SimStorage: Storage for the simulator, with a disk that can lose what it was not told to
// sync. Every write takes effect at once in memory (its order is fixed when first awaited)
// and completes after a simulated fdatasync (virtual time, seeded latency) that covers every
// write issued before it began: group commit, as WalStorage does. crash() makes the state a
// restarted peer sees: everything synced, plus a random prefix of the unsynced writes; the
// write after that prefix was torn (recovery discards it, as the WAL's checksums do) and the
// rest were never written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "core/clock.h"
#include "core/event.h"
#include "core/rng.h"
#include "raft/storage.h"

namespace uraft {

struct SimStorageOptions {
  // A sync takes a time drawn uniformly from [min, max] (the loop's seeded rng).
  Duration sync_latency_min = std::chrono::microseconds(500);
  Duration sync_latency_max = std::chrono::milliseconds(5);
};

class SimStorage final : public Storage {
 public:
  explicit SimStorage(SimStorageOptions options = {}) : options_(options) {}

  // A peer restarted after a crash: the synced state and a random prefix of what was not.
  std::unique_ptr<SimStorage> crash(Rng& rng) const;
  // A copy with everything written so far, synced (a clean shutdown).
  std::unique_ptr<SimStorage> copy() const;

  Task<RecoveredState> load() override;
  Task<void> save_hard_state(HardState state) override;
  Task<void> append(LogIndex first, std::vector<LogEntry> entries) override;
  Task<void> save_snapshot(SnapshotRecord snapshot, SnapshotLogAction action) override;

  // The state with every write issued so far (for a tester, like MemStorage's accessors).
  const std::optional<SnapshotRecord>& snapshot() const noexcept { return written_.snapshot; }
  const HardState& hard_state() const noexcept { return written_.hard_state; }
  LogIndex last_index() const noexcept { return written_.last_index(); }
  std::size_t raft_state_size() const noexcept;
  std::size_t snapshot_size() const noexcept { return snapshot() ? snapshot()->data.size() : 0; }

  std::size_t unsynced() const noexcept { return pending_.size(); }
  std::uint64_t syncs() const noexcept { return syncs_; }
  // Writes this storage's crashes dropped (accumulated along a chain of crash() copies).
  std::uint64_t writes_lost() const noexcept { return writes_lost_; }

 private:
  struct State {
    HardState hard_state;
    std::optional<SnapshotRecord> snapshot;
    std::vector<LogEntry> entries;  // entries[0] is at base_index() + 1.
    LogIndex base_index() const noexcept {
      return snapshot ? snapshot->last_included_index : LogIndex{0};
    }
    LogIndex last_index() const noexcept { return LogIndex{base_index().value + entries.size()}; }
  };
  struct Write {
    enum class Kind : std::uint8_t { kHardState, kAppend, kSnapshot } kind = Kind::kAppend;
    HardState hard_state;
    LogIndex first;
    std::vector<LogEntry> entries;
    SnapshotRecord snapshot;
    SnapshotLogAction action = SnapshotLogAction::kKeepSuffix;
  };

  static void apply(State& state, const Write& w);
  // Orders `w` (applies it to the written state, queues it for the disk), then waits until
  // a sync covers it.
  Task<void> issue(Write w);
  Task<void> await_synced(std::uint64_t seq);

  SimStorageOptions options_;
  State written_;  // Every write issued.
  State synced_;   // Every write a completed sync covered.
  std::deque<Write> pending_;  // Issued, not yet synced, in order.
  std::uint64_t issued_seq_ = 0;
  std::uint64_t synced_seq_ = 0;
  bool syncing_ = false;  // A task is sleeping through a sync; the others wait for it.
  Event sync_done_;
  std::uint64_t syncs_ = 0;
  std::uint64_t writes_lost_ = 0;
};

}  // namespace uraft
