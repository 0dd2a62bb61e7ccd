// WalFiles: the file operations WalStorage uses, behind one interface so tests can inject
// faults. UringFiles runs them on the current loop's io_uring (listing a directory and
// taking a lock, done once at open, are plain system calls). FaultyFiles wraps another
// layer and fails chosen operations (ENOSPC once a byte budget is spent, EIO on demand).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/io.h"
#include "core/task.h"

namespace uraft {

class WalFiles {
 public:
  virtual ~WalFiles() = default;

  virtual Task<IoResult> open(int dir_fd, std::string name, int flags, mode_t mode) = 0;
  virtual Task<IoResult> close(int fd) = 0;
  virtual Task<IoResult> read(int fd, std::span<std::byte> buf, std::uint64_t offset) = 0;
  // A blocking read (pread), safe from any thread: for a snapshot file's pieces, read where
  // no await is possible (a helper thread) or worth it (mostly in the page cache).
  virtual IoResult read_now(int fd, std::span<std::byte> buf, std::uint64_t offset) = 0;
  virtual Task<IoResult> write(int fd, std::span<const std::byte> buf, std::uint64_t offset) = 0;
  virtual Task<IoResult> fdatasync(int fd) = 0;
  virtual Task<IoResult> fsync(int fd) = 0;
  virtual Task<IoResult> fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length) = 0;
  virtual Task<IoResult> rename(int dir_fd, std::string from, std::string to) = 0;
  virtual Task<IoResult> unlink(int dir_fd, std::string name) = 0;
  // A blocking unlink, for files given up on where no await is possible (a destructor).
  virtual void unlink_now(int dir_fd, const std::string& name) noexcept = 0;
  // Synchronous, used only while opening: the names in a directory; the size of a file.
  virtual std::vector<std::string> list(int dir_fd) = 0;
  virtual IoResult file_size(int fd, std::uint64_t& size) = 0;
  virtual IoResult truncate(int fd, std::uint64_t size) = 0;
  // Synchronous, used only while opening: creates the directory `path` if missing and opens
  // it (res is its fd).
  virtual IoResult open_dir(const std::string& path) = 0;
  // Opens `name` in the directory, takes an exclusive lock on it without waiting and writes
  // this process's id into it (res is its fd; closing it releases the lock). EWOULDBLOCK: held
  // by another process, whose id `holder` receives.
  virtual IoResult lock(int dir_fd, const std::string& name, std::string& holder) = 0;
  // Synchronous close, for destructors and error paths.
  virtual void close_now(int fd) noexcept = 0;
};

class UringFiles final : public WalFiles {
 public:
  Task<IoResult> open(int dir_fd, std::string name, int flags, mode_t mode) override;
  Task<IoResult> close(int fd) override;
  Task<IoResult> read(int fd, std::span<std::byte> buf, std::uint64_t offset) override;
  IoResult read_now(int fd, std::span<std::byte> buf, std::uint64_t offset) override;
  Task<IoResult> write(int fd, std::span<const std::byte> buf, std::uint64_t offset) override;
  Task<IoResult> fdatasync(int fd) override;
  Task<IoResult> fsync(int fd) override;
  Task<IoResult> fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length) override;
  Task<IoResult> rename(int dir_fd, std::string from, std::string to) override;
  Task<IoResult> unlink(int dir_fd, std::string name) override;
  void unlink_now(int dir_fd, const std::string& name) noexcept override;
  std::vector<std::string> list(int dir_fd) override;
  IoResult file_size(int fd, std::uint64_t& size) override;
  IoResult truncate(int fd, std::uint64_t size) override;
  IoResult open_dir(const std::string& path) override;
  IoResult lock(int dir_fd, const std::string& name, std::string& holder) override;
  void close_now(int fd) noexcept override;
};

// Fails operations on purpose. Counters let a test assert what was attempted.
class FaultyFiles final : public WalFiles {
 public:
  explicit FaultyFiles(std::shared_ptr<WalFiles> inner) : inner_(std::move(inner)) {}

  // Writes and fallocates fail with ENOSPC once they would take the bytes written (or
  // allocated) past this budget; "space returns" by raising it. Unlimited by default.
  void set_space_left(std::uint64_t bytes) noexcept { space_left_ = bytes; }
  std::uint64_t space_left() const noexcept { return space_left_; }
  // The next `count` writes / syncs (fdatasync and fsync) fail with `error` (an errno).
  void fail_writes(int error, int count = 1) noexcept { write_error_ = error, write_failures_ = count; }
  void fail_syncs(int error, int count = 1) noexcept { sync_error_ = error, sync_failures_ = count; }

  std::uint64_t writes() const noexcept { return writes_; }
  std::uint64_t syncs() const noexcept { return syncs_; }
  std::uint64_t no_space_errors() const noexcept { return no_space_errors_; }

  Task<IoResult> open(int dir_fd, std::string name, int flags, mode_t mode) override;
  Task<IoResult> close(int fd) override;
  Task<IoResult> read(int fd, std::span<std::byte> buf, std::uint64_t offset) override;
  Task<IoResult> write(int fd, std::span<const std::byte> buf, std::uint64_t offset) override;
  Task<IoResult> fdatasync(int fd) override;
  Task<IoResult> fsync(int fd) override;
  Task<IoResult> fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length) override;
  Task<IoResult> rename(int dir_fd, std::string from, std::string to) override;
  Task<IoResult> unlink(int dir_fd, std::string name) override;
  IoResult read_now(int fd, std::span<std::byte> buf, std::uint64_t offset) override {
    return inner_->read_now(fd, buf, offset);
  }
  void unlink_now(int dir_fd, const std::string& name) noexcept override {
    inner_->unlink_now(dir_fd, name);
  }
  std::vector<std::string> list(int dir_fd) override { return inner_->list(dir_fd); }
  IoResult file_size(int fd, std::uint64_t& size) override { return inner_->file_size(fd, size); }
  IoResult truncate(int fd, std::uint64_t size) override { return inner_->truncate(fd, size); }
  IoResult open_dir(const std::string& path) override { return inner_->open_dir(path); }
  IoResult lock(int dir_fd, const std::string& name, std::string& holder) override {
    return inner_->lock(dir_fd, name, holder);
  }
  void close_now(int fd) noexcept override { inner_->close_now(fd); }

 private:
  bool take_space(std::uint64_t bytes) noexcept;

  std::shared_ptr<WalFiles> inner_;
  std::uint64_t space_left_ = UINT64_MAX;
  int write_error_ = 0;
  int write_failures_ = 0;
  int sync_error_ = 0;
  int sync_failures_ = 0;
  std::uint64_t writes_ = 0;
  std::uint64_t syncs_ = 0;
  std::uint64_t no_space_errors_ = 0;
};

}  // namespace uraft
