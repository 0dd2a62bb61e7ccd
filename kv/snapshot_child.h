// ChildSnapshot: serializes the store in a forked child, as Redis's BGSAVE does. fork() gives
// the child a copy-on-write image of the process at that instant, so the loop goes on applying
// (the pages it writes are copied, the rest are shared) while the child writes the state into
// a pipe; the loop moves what arrives into storage's sink. The loop's one stall is fork()
// itself, which copies the page tables (INFO's snapshot_fork_usec).
#pragma once

#include <sys/types.h>

#include "core/clock.h"
#include "core/task.h"
#include "kv/store.h"
#include "raft/snapshot_data.h"

namespace uraft::kv {

class ChildSnapshot {
 public:
  // Forks the child that writes `store`, as it is now, into a pipe and exits. Throws
  // std::system_error if the pipe or the child cannot be made.
  explicit ChildSnapshot(const Store& store);
  ChildSnapshot(const ChildSnapshot&) = delete;
  ChildSnapshot& operator=(const ChildSnapshot&) = delete;
  // Kills and reaps a child still running.
  ~ChildSnapshot();

  // Moves what the child writes into `sink` until it exits: true if it wrote everything and
  // exited cleanly. Throws what sink.append throws.
  Task<bool> drain(SnapshotSink& sink);

  // How long fork() took: the loop's stall.
  Duration fork_time() const noexcept { return fork_time_; }

 private:
  int fd_ = -1;
  pid_t pid_ = -1;
  Duration fork_time_{};
};

}  // namespace uraft::kv
