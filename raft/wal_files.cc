#include "raft/wal_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace uraft {

// --- UringFiles ---

Task<IoResult> UringFiles::open(int dir_fd, std::string name, int flags, mode_t mode) {
  co_return co_await io::open_at(dir_fd, std::move(name), flags | O_CLOEXEC, mode);
}
Task<IoResult> UringFiles::close(int fd) { co_return co_await io::close_fd(fd); }
Task<IoResult> UringFiles::read(int fd, std::span<std::byte> buf, std::uint64_t offset) {
  co_return co_await io::read_at(fd, buf, offset);
}
IoResult UringFiles::read_now(int fd, std::span<std::byte> buf, std::uint64_t offset) {
  const ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(offset));
  return IoResult{n < 0 ? -errno : static_cast<int>(n)};
}
Task<IoResult> UringFiles::write(int fd, std::span<const std::byte> buf, std::uint64_t offset) {
  co_return co_await io::write_at(fd, buf, offset);
}
Task<IoResult> UringFiles::fdatasync(int fd) { co_return co_await io::fdatasync(fd); }
Task<IoResult> UringFiles::fsync(int fd) { co_return co_await io::fsync(fd); }
Task<IoResult> UringFiles::fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length) {
  co_return co_await io::fallocate(fd, mode, offset, length);
}

namespace {
struct RenamePrep {
  int dir_fd;
  std::string from;
  std::string to;
  void operator()(io_uring_sqe* sqe) const {
    io_uring_prep_renameat(sqe, dir_fd, from.c_str(), dir_fd, to.c_str(), 0);
  }
};
struct UnlinkPrep {
  int dir_fd;
  std::string name;
  void operator()(io_uring_sqe* sqe) const {
    io_uring_prep_unlinkat(sqe, dir_fd, name.c_str(), 0);
  }
};
}  // namespace

Task<IoResult> UringFiles::rename(int dir_fd, std::string from, std::string to) {
  RenamePrep prep{dir_fd, std::move(from), std::move(to)};  // No braces inside co_await (g++ 12).
  auto op = make_io(std::move(prep));
  co_return co_await op;
}
Task<IoResult> UringFiles::unlink(int dir_fd, std::string name) {
  UnlinkPrep prep{dir_fd, std::move(name)};
  auto op = make_io(std::move(prep));
  co_return co_await op;
}

std::vector<std::string> UringFiles::list(int dir_fd) {
  std::vector<std::string> names;
  const int fd = ::dup(dir_fd);
  if (fd < 0) return names;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return names;
  }
  ::rewinddir(d);
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

IoResult UringFiles::file_size(int fd, std::uint64_t& size) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return IoResult{-errno};
  size = static_cast<std::uint64_t>(st.st_size);
  return IoResult{0};
}

IoResult UringFiles::truncate(int fd, std::uint64_t size) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return IoResult{-errno};
  return IoResult{0};
}

IoResult UringFiles::open_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return IoResult{-errno};
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return IoResult{fd < 0 ? -errno : fd};
}

IoResult UringFiles::lock(int dir_fd, const std::string& name, std::string& holder) {
  const int fd = ::openat(dir_fd, name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IoResult{-errno};
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char pid[32] = {};
    const ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
    holder = n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : "?";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd);
    return IoResult{-error};
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int error = errno;
    ::close(fd);
    return IoResult{-error};
  }
  return IoResult{fd};
}

void UringFiles::close_now(int fd) noexcept { ::close(fd); }
void UringFiles::unlink_now(int dir_fd, const std::string& name) noexcept {
  (void)::unlinkat(dir_fd, name.c_str(), 0);
}

// --- FaultyFiles ---

bool FaultyFiles::take_space(std::uint64_t bytes) noexcept {
  if (bytes > space_left_) {
    ++no_space_errors_;
    return false;
  }
  if (space_left_ != UINT64_MAX) space_left_ -= bytes;
  return true;
}

Task<IoResult> FaultyFiles::open(int dir_fd, std::string name, int flags, mode_t mode) {
  co_return co_await inner_->open(dir_fd, std::move(name), flags, mode);
}
Task<IoResult> FaultyFiles::close(int fd) { co_return co_await inner_->close(fd); }
Task<IoResult> FaultyFiles::read(int fd, std::span<std::byte> buf, std::uint64_t offset) {
  co_return co_await inner_->read(fd, buf, offset);
}

Task<IoResult> FaultyFiles::write(int fd, std::span<const std::byte> buf, std::uint64_t offset) {
  ++writes_;
  if (write_failures_ > 0) {
    --write_failures_;
    co_return IoResult{-write_error_};
  }
  // Only bytes past the file's end take space: the rest was allocated before.
  std::uint64_t size = 0;
  if (const IoResult r = inner_->file_size(fd, size); !r.ok()) co_return r;
  const std::uint64_t end = offset + buf.size();
  if (end > size && !take_space(end - size)) co_return IoResult{-ENOSPC};
  co_return co_await inner_->write(fd, buf, offset);
}

Task<IoResult> FaultyFiles::fdatasync(int fd) {
  ++syncs_;
  if (sync_failures_ > 0) {
    --sync_failures_;
    co_return IoResult{-sync_error_};
  }
  co_return co_await inner_->fdatasync(fd);
}

Task<IoResult> FaultyFiles::fsync(int fd) {
  ++syncs_;
  if (sync_failures_ > 0) {
    --sync_failures_;
    co_return IoResult{-sync_error_};
  }
  co_return co_await inner_->fsync(fd);
}

Task<IoResult> FaultyFiles::fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length) {
  std::uint64_t size = 0;
  if (const IoResult r = inner_->file_size(fd, size); !r.ok()) co_return r;
  const std::uint64_t end = offset + length;
  if (end > size && !take_space(end - size)) co_return IoResult{-ENOSPC};
  co_return co_await inner_->fallocate(fd, mode, offset, length);
}

Task<IoResult> FaultyFiles::rename(int dir_fd, std::string from, std::string to) {
  co_return co_await inner_->rename(dir_fd, std::move(from), std::move(to));
}
Task<IoResult> FaultyFiles::unlink(int dir_fd, std::string name) {
  co_return co_await inner_->unlink(dir_fd, std::move(name));
}

}  // namespace uraft
