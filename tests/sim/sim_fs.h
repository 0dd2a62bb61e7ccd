// SimFs: a simulated disk under the real WAL (WalFiles), on virtual time, for the cluster
// simulator. What reads see and what survives a crash are kept apart, as a page cache and a
// disk are:
//   - a write lands in the file's cache at once and joins its unsynced operations; fdatasync
//     (or fsync) makes every operation issued before it began durable, after a seeded latency
//     with a long tail;
//   - creating, renaming and removing a name are directory operations, durable only once the
//     directory is fsynced;
//   - crash() keeps what was durable plus a random prefix of each file's and directory's
//     unsynced operations; the first operation past the prefix may be torn at a sector
//     boundary (a prefix of its sectors landed); the rest are lost. Every fd is gone.
// Faults on demand: ENOSPC once a byte budget is spent, EIO on a seeded share of writes and
// syncs, and a bit flip in a file at rest (flip_bit). All randomness is the loop's rng.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/rng.h"
#include "raft/wal_files.h"

namespace uraft::sim {

struct SimDiskOptions {
  Duration write_latency_max = std::chrono::microseconds(50);
  Duration sync_latency_min = std::chrono::microseconds(200);
  Duration sync_latency_max = std::chrono::milliseconds(3);
  // One sync in this many thousand takes [sync_latency_max, sync_tail_max] instead.
  std::uint32_t sync_tail_per_mille = 0;
  Duration sync_tail_max = std::chrono::seconds(2);
  // Writes and syncs that fail with EIO, per million.
  std::uint32_t eio_per_million = 0;
};

class SimFs final : public WalFiles {
 public:
  static constexpr std::size_t kSectorBytes = 512;

  explicit SimFs(SimDiskOptions options = {}) : options_(options) {}

  void set_options(const SimDiskOptions& options) noexcept { options_ = options; }
  const SimDiskOptions& options() const noexcept { return options_; }
  // Writes and preallocations fail with ENOSPC once they would grow the files past this many
  // bytes in all. Unlimited by default.
  void set_space_left(std::uint64_t bytes) noexcept { space_left_ = bytes; }

  // The process died: what the disk holds afterwards, as described above. Returns the
  // number of unsynced operations lost (torn ones included).
  std::uint64_t crash(Rng& rng);
  // Flips one bit in a durable byte of a file in `dir` whose name starts with `prefix`,
  // chosen by `rng`; skips the newest such file if `skip_newest`. Returns a description, or
  // nothing if no such file had a byte.
  std::optional<std::string> flip_bit(Rng& rng, const std::string& dir, const std::string& prefix,
                                      bool skip_newest);

  std::uint64_t syncs() const noexcept { return syncs_; }
  std::uint64_t io_errors() const noexcept { return io_errors_; }

  // WalFiles.
  Task<IoResult> open(int dir_fd, std::string name, int flags, mode_t mode) override;
  Task<IoResult> close(int fd) override;
  Task<IoResult> read(int fd, std::span<std::byte> buf, std::uint64_t offset) override;
  IoResult read_now(int fd, std::span<std::byte> buf, std::uint64_t offset) override;
  void unlink_now(int dir_fd, const std::string& name) noexcept override;
  Task<IoResult> write(int fd, std::span<const std::byte> buf, std::uint64_t offset) override;
  Task<IoResult> fdatasync(int fd) override;
  Task<IoResult> fsync(int fd) override;
  Task<IoResult> fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length) override;
  Task<IoResult> rename(int dir_fd, std::string from, std::string to) override;
  Task<IoResult> unlink(int dir_fd, std::string name) override;
  std::vector<std::string> list(int dir_fd) override;
  IoResult file_size(int fd, std::uint64_t& size) override;
  IoResult truncate(int fd, std::uint64_t size) override;
  IoResult open_dir(const std::string& path) override;
  IoResult lock(int dir_fd, const std::string& name, std::string& holder) override;
  void close_now(int fd) noexcept override;

 private:
  using Bytes = std::vector<std::byte>;
  struct FileOp {  // A write of `data` at `offset`, or (data empty) a resize to `offset`.
    std::uint64_t offset = 0;
    Bytes data;
  };
  struct File {
    Bytes cached;                 // What reads see.
    Bytes durable;                // What survives a crash.
    std::vector<FileOp> pending;  // Since the last sync, in order.
  };
  struct DirOp {  // Removes `from` (if set), then binds `name` to `file` or (file null) removes it.
    std::string name;
    std::shared_ptr<File> file;
    std::string from;
  };
  struct Dir {
    std::map<std::string, std::shared_ptr<File>> names;    // What lookups see.
    std::map<std::string, std::shared_ptr<File>> durable;  // What survives a crash.
    std::vector<DirOp> pending;
    bool locked = false;
  };
  struct Fd {
    std::shared_ptr<Dir> dir;    // Set for a directory, or the directory a lock file is in.
    std::shared_ptr<File> file;  // Set for a file.
    bool lock = false;
  };

  static void apply(Bytes& bytes, const FileOp& op);
  static void apply(std::map<std::string, std::shared_ptr<File>>& names, const DirOp& op);
  void bind(Dir& dir, std::string name, std::shared_ptr<File> file, std::string from = {});
  Fd* find(int fd);
  bool take_space(std::uint64_t now_size, std::uint64_t new_size);
  bool fail_io(Rng& rng);
  Duration sync_latency(Rng& rng) const;
  Task<IoResult> sync(int fd);

  SimDiskOptions options_;
  std::map<std::string, std::shared_ptr<Dir>> dirs_;  // By path; created by open_dir.
  std::map<int, Fd> fds_;
  int next_fd_ = 3;
  std::uint64_t generation_ = 0;  // Bumped by crash(): syncs started before it do nothing.
  std::uint64_t space_left_ = UINT64_MAX;
  std::uint64_t syncs_ = 0;
  std::uint64_t io_errors_ = 0;
};

}  // namespace uraft::sim
