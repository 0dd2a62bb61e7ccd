// WalStorage: Storage on disk, as a segmented write-ahead log plus snapshot files in one data
// directory, written through the loop's io_uring. Appends that arrive while a write and its
// fdatasync are in flight join the next group: one fdatasync makes the whole group durable.
// docs/storage.md describes the format, the recovery rules and the numbers.
//
// Usage (on an io_uring loop):
//   std::unique_ptr<WalStorage> wal = co_await WalStorage::open("/var/lib/uraft/n1", {});
//   RecoveredState state = co_await wal->load();
//   ... Node node(self, n, rpc, *wal, config, std::move(state)); ...
//   co_await wal->close();  // Before destroying it: waits for writes still in flight.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/event.h"
#include "core/scope.h"
#include "core/task.h"
#include "raft/storage.h"
#include "raft/wal_files.h"

namespace uraft {

// Recovery refused to start: a corrupt record before the log's tail, a missing segment, an
// unreadable snapshot, a locked directory. `file` and `offset` say where (offset 0 when the
// whole file is at fault); what() says it all in one line.
struct WalRecoveryError : std::runtime_error {
  WalRecoveryError(std::string file_name, std::uint64_t file_offset, const std::string& reason);
  std::string file;
  std::uint64_t offset = 0;
};

// A write failed for good (an I/O error, or a failed fdatasync: the page cache can no longer
// be trusted). Every pending and later write throws it; reopening the directory recovers.
struct WalWriteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct WalOptions {
  // Size of each segment file, preallocated when it is created.
  std::uint64_t segment_bytes = 64ull << 20;
  // Bytes of records one group writes at most (one write, one fdatasync). A record larger
  // than this is written alone. Also bounds the damage a torn write can do: recovery looks
  // for a torn tail only within this many bytes of the last good record.
  std::size_t group_bytes_max = 1u << 20;
  // While the disk is full (ENOSPC), writes stop and are retried this often.
  Duration no_space_retry_interval = std::chrono::milliseconds(100);
  // Where recovery warnings go (a torn tail truncated, stale files removed). Default: stderr.
  std::function<void(std::string_view)> warn;
  // The file layer; default: io_uring on the current loop. Tests inject faults here.
  std::shared_ptr<WalFiles> files;
};

struct WalStats {
  std::uint64_t groups = 0;        // Group commits: one write + one fdatasync each.
  std::uint64_t records = 0;       // Records written (hard state, entry batches, markers).
  std::uint64_t bytes = 0;         // Record bytes written.
  std::uint64_t segments_created = 0;
  std::uint64_t segments_removed = 0;
  std::uint64_t snapshots = 0;
  std::uint64_t no_space_stalls = 0;  // Times writing stopped on ENOSPC (and later resumed).
};

class WalStorage final : public Storage {
 public:
  // Opens (creating if needed) the data directory `dir`, takes its lock and recovers. Throws
  // WalRecoveryError when the directory is locked by another process or recovery refuses.
  static Task<std::unique_ptr<WalStorage>> open(std::string dir, WalOptions options = {});

  WalStorage(const WalStorage&) = delete;
  WalStorage& operator=(const WalStorage&) = delete;
  // Asserts close() was awaited if any write was ever issued.
  ~WalStorage() override;

  // Waits for every write issued so far (their errors are theirs, not close()'s), then
  // closes the files and releases the lock. No writes after it.
  Task<void> close();

  // Storage (raft/storage.h): the same ordering, durability and atomicity contract.
  Task<RecoveredState> load() override;
  Task<void> save_hard_state(HardState state) override;
  Task<void> append(LogIndex first, std::vector<LogEntry> entries) override;
  Task<void> save_snapshot(SnapshotRecord snapshot, SnapshotLogAction action) override;
  // A temporary file in the directory; saving what it finishes with renames it into place.
  std::unique_ptr<SnapshotSink> snapshot_sink(LogIndex index, Term term) override;

  // Why writes are stopped ("no space left on device ..." while retrying, or the error
  // that failed them for good); empty while writes flow.
  const std::string& write_problem() const noexcept { return write_problem_; }
  bool failed() const noexcept { return failed_; }
  const WalStats& stats() const noexcept { return stats_; }
  // What recovery repaired or removed at open, one line each (also sent to options.warn).
  const std::vector<std::string>& recovery_warnings() const noexcept { return warnings_; }
  const std::string& dir() const noexcept { return dir_; }

  // Test hooks: the segment files in order, and the last entry index in storage's log.
  std::vector<std::string> segment_names() const;
  LogIndex last_index() const noexcept { return last_index_; }

  struct Impl;  // Recovery and file-format helpers (wal_storage.cc).

 private:
  // One group commit or one snapshot, in the order writes were issued.
  struct Stage;
  struct Temporaries;
  class SnapshotFile;
  class SnapshotFileSink;
  struct Segment {
    std::uint64_t seq = 0;
    std::uint64_t max_index = 0;  // Highest entry index any record in it wrote.
  };

  WalStorage(std::string dir, WalOptions options);

  // Queues `record` (an encoded record) in the open group and returns its stage.
  std::shared_ptr<Stage> queue_record(std::vector<std::byte> record, std::uint64_t max_index);
  Task<void> await_stage(std::shared_ptr<Stage> stage);
  void start_writer();
  static Task<void> run_writer(WalStorage* self);
  Task<void> write_group(Stage& stage);
  Task<void> write_snapshot(Stage& stage);
  // Writes snapshot bytes held elsewhere (in memory) to a temporary file of ours.
  Task<SnapshotData> copy_snapshot(const SnapshotRecord& s);
  std::string temporary_name(LogIndex index);
  // Writes records at the end of the newest segment (rotating first if they do not fit) and
  // makes them durable.
  Task<void> write_records(std::vector<std::byte> bytes, std::uint64_t max_index);
  Task<void> rotate_segment();
  Task<void> create_segment(std::uint64_t seq);
  Task<void> compact(LogIndex snapshot_index);
  // Writes `bytes` at `offset` of `fd` whole, waiting while the disk is full.
  Task<void> write_all(int fd, std::vector<std::byte> bytes, std::uint64_t offset,
                       std::string what);
  Task<void> sync(int fd, bool data_only, std::string what);
  Task<void> stall_on_no_space(std::string what);
  void resume_after_stall();
  void fail(std::string reason);
  void warn(std::string line);

  std::string dir_;
  WalOptions options_;
  std::shared_ptr<WalFiles> files_;
  int dir_fd_ = -1;
  int lock_fd_ = -1;
  bool closed_ = false;

  // The log as storage holds it once every issued write is done (updated when a write is
  // ordered, so later writes are checked against it).
  HardState hard_state_;
  LogIndex snapshot_index_;
  Term snapshot_term_;
  LogIndex last_index_;
  std::optional<RecoveredState> recovered_;  // What open() read, until a write changes it.
  // The same, as of the records the writer has written (segment headers carry it forward).
  HardState wal_hard_state_;
  LogIndex wal_last_index_;
  LogIndex wal_snapshot_index_;

  // Segments, oldest first; the last one is open for appends at write_offset_.
  std::deque<Segment> segments_;
  int segment_fd_ = -1;
  std::uint64_t write_offset_ = 0;
  std::uint64_t segment_data_start_ = 0;  // Where records start in it (after its header).
  bool segment_sealed_ = false;  // The last segment ends with its seal: the next write rotates.

  // The writer: stages run one at a time, in order. Owned by the writer task alone while it
  // runs; appends only add to the back.
  std::deque<std::shared_ptr<Stage>> stages_;
  Scope writer_scope_;
  bool writer_running_ = false;
  Event writer_idle_;
  bool failed_ = false;
  std::string write_problem_;
  WalStats stats_;
  std::vector<std::string> warnings_;
  // What sinks and snapshot files use to remove their temporaries (set up at open).
  std::shared_ptr<Temporaries> temporaries_;
  std::uint64_t temporaries_made_ = 0;
};

}  // namespace uraft
