#include "tests/sim/sim_fs.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/loop.h"

namespace uraft::sim {

void SimFs::apply(Bytes& bytes, const FileOp& op) {
  if (op.data.empty()) {
    bytes.resize(op.offset);
    return;
  }
  if (bytes.size() < op.offset + op.data.size()) bytes.resize(op.offset + op.data.size());
  std::copy(op.data.begin(), op.data.end(), bytes.begin() + static_cast<std::ptrdiff_t>(op.offset));
}

void SimFs::apply(std::map<std::string, std::shared_ptr<File>>& names, const DirOp& op) {
  if (!op.from.empty()) names.erase(op.from);
  if (op.file) {
    names[op.name] = op.file;
  } else {
    names.erase(op.name);
  }
}

void SimFs::bind(Dir& dir, std::string name, std::shared_ptr<File> file, std::string from) {
  DirOp op{std::move(name), std::move(file), std::move(from)};
  apply(dir.names, op);
  dir.pending.push_back(std::move(op));
}

SimFs::Fd* SimFs::find(int fd) {
  auto it = fds_.find(fd);
  return it == fds_.end() ? nullptr : &it->second;
}

bool SimFs::take_space(std::uint64_t now_size, std::uint64_t new_size) {
  if (new_size <= now_size) return true;
  const std::uint64_t grow = new_size - now_size;
  if (grow > space_left_) return false;
  if (space_left_ != UINT64_MAX) space_left_ -= grow;
  return true;
}

bool SimFs::fail_io(Rng& rng) {
  if (options_.eio_per_million == 0 || rng.uniform(0, 999'999) >= options_.eio_per_million)
    return false;
  ++io_errors_;
  return true;
}

Duration SimFs::sync_latency(Rng& rng) const {
  auto draw = [&rng](Duration lo, Duration hi) {
    return Duration{static_cast<Duration::rep>(rng.uniform(
        static_cast<std::uint64_t>(lo.count()), static_cast<std::uint64_t>(hi.count())))};
  };
  if (options_.sync_tail_per_mille > 0 && rng.uniform(0, 999) < options_.sync_tail_per_mille) {
    return draw(options_.sync_latency_max, options_.sync_tail_max);
  }
  return draw(options_.sync_latency_min, options_.sync_latency_max);
}

std::uint64_t SimFs::crash(Rng& rng) {
  std::uint64_t lost = 0;
  ++generation_;
  fds_.clear();
  // Every file reachable from a directory, durably or not, keeps a random prefix of its
  // unsynced operations; the next one may be torn at a sector boundary. Files are visited in
  // listing order, so the draws are a function of the seed.
  std::vector<File*> order;
  for (auto& [path, dir] : dirs_) {
    for (auto& [name, f] : dir->names) order.push_back(f.get());
    for (auto& [name, f] : dir->durable) order.push_back(f.get());
  }
  std::vector<File*> seen;
  for (File* f : order) {
    if (std::find(seen.begin(), seen.end(), f) != seen.end()) continue;
    seen.push_back(f);
    const std::size_t kept = rng.uniform(0, f->pending.size());
    for (std::size_t i = 0; i < kept; ++i) apply(f->durable, f->pending[i]);
    if (kept < f->pending.size()) {
      const FileOp& torn = f->pending[kept];
      if (!torn.data.empty() && rng.uniform(0, 1) == 1) {
        // The sectors the write covers, in order; a prefix of them landed.
        const std::uint64_t end = torn.offset + torn.data.size();
        const std::uint64_t first_boundary = (torn.offset / kSectorBytes + 1) * kSectorBytes;
        if (first_boundary < end) {
          const std::uint64_t sectors = (end - first_boundary + kSectorBytes - 1) / kSectorBytes;
          const std::uint64_t cut =
              std::min(end, first_boundary + rng.uniform(0, sectors - 1) * kSectorBytes);
          FileOp part{torn.offset,
                      Bytes(torn.data.begin(),
                            torn.data.begin() + static_cast<std::ptrdiff_t>(cut - torn.offset))};
          apply(f->durable, part);
        }
      }
    }
    lost += f->pending.size() - kept;
    f->pending.clear();
    f->cached = f->durable;
  }
  for (auto& [path, dir] : dirs_) {
    const std::size_t kept = rng.uniform(0, dir->pending.size());
    for (std::size_t i = 0; i < kept; ++i) apply(dir->durable, dir->pending[i]);
    lost += dir->pending.size() - kept;
    dir->pending.clear();
    dir->names = dir->durable;
    dir->locked = false;
  }
  return lost;
}

std::optional<std::string> SimFs::flip_bit(Rng& rng, const std::string& path,
                                           const std::string& prefix, bool skip_newest) {
  auto d = dirs_.find(path);
  if (d == dirs_.end()) return std::nullopt;
  std::vector<std::pair<std::string, File*>> candidates;
  for (auto& [name, f] : d->second->durable) {
    if (name.rfind(prefix, 0) == 0) candidates.emplace_back(name, f.get());
  }
  if (skip_newest && !candidates.empty()) candidates.pop_back();  // Names sort by age.
  std::erase_if(candidates, [](const auto& c) { return c.second->durable.empty(); });
  if (candidates.empty()) return std::nullopt;
  auto& [name, f] = candidates[rng.uniform(0, candidates.size() - 1)];
  const std::uint64_t at = rng.uniform(0, f->durable.size() - 1);
  const auto bit = static_cast<unsigned>(rng.uniform(0, 7));
  f->durable[at] ^= std::byte{static_cast<unsigned char>(1u << bit)};
  if (f->cached.size() > at) f->cached[at] = f->durable[at];
  return name + " byte " + std::to_string(at) + " bit " + std::to_string(bit);
}

// --- WalFiles ---

IoResult SimFs::open_dir(const std::string& path) {
  std::shared_ptr<Dir>& dir = dirs_[path];
  if (!dir) dir = std::make_shared<Dir>();  // Its creation is durable at once (a parent fsync).
  const int fd = next_fd_++;
  fds_[fd] = Fd{dir, nullptr, false};
  return IoResult{fd};
}

IoResult SimFs::lock(int dir_fd, const std::string& name, std::string& holder) {
  Fd* d = find(dir_fd);
  if (d == nullptr || !d->dir) return IoResult{-EBADF};
  if (d->dir->locked) {
    holder = "simulated";
    return IoResult{-EWOULDBLOCK};
  }
  if (!d->dir->names.contains(name)) bind(*d->dir, name, std::make_shared<File>());
  d->dir->locked = true;
  const int fd = next_fd_++;
  fds_[fd] = Fd{d->dir, d->dir->names[name], true};
  return IoResult{fd};
}

void SimFs::close_now(int fd) noexcept {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return;
  if (it->second.lock) it->second.dir->locked = false;
  fds_.erase(it);
}

Task<IoResult> SimFs::open(int dir_fd, std::string name, int flags, mode_t) {
  Fd* d = find(dir_fd);
  if (d == nullptr || !d->dir) co_return IoResult{-EBADF};
  auto it = d->dir->names.find(name);
  std::shared_ptr<File> file;
  if (it == d->dir->names.end()) {
    if ((flags & O_CREAT) == 0) co_return IoResult{-ENOENT};
    file = std::make_shared<File>();
    bind(*d->dir, name, file);
  } else {
    file = it->second;
    if ((flags & O_TRUNC) != 0 && !file->cached.empty()) {
      FileOp op{0, {}};
      apply(file->cached, op);
      file->pending.push_back(std::move(op));
    }
  }
  const int fd = next_fd_++;
  fds_[fd] = Fd{nullptr, std::move(file), false};
  co_return IoResult{fd};
}

Task<IoResult> SimFs::close(int fd) {
  close_now(fd);
  co_return IoResult{0};
}

Task<IoResult> SimFs::read(int fd, std::span<std::byte> buf, std::uint64_t offset) {
  co_return read_now(fd, buf, offset);
}

IoResult SimFs::read_now(int fd, std::span<std::byte> buf, std::uint64_t offset) {
  Fd* f = find(fd);
  if (f == nullptr || !f->file) return IoResult{-EBADF};
  const Bytes& bytes = f->file->cached;
  if (offset >= bytes.size()) return IoResult{0};
  const std::size_t n = std::min<std::size_t>(buf.size(), bytes.size() - offset);
  std::memcpy(buf.data(), bytes.data() + offset, n);
  return IoResult{static_cast<int>(n)};
}

Task<IoResult> SimFs::write(int fd, std::span<const std::byte> buf, std::uint64_t offset) {
  Loop& loop = Loop::current();
  const std::uint64_t generation = generation_;
  co_await sleep_for(Duration{static_cast<Duration::rep>(
      loop.rng().uniform(0, static_cast<std::uint64_t>(options_.write_latency_max.count())))});
  Fd* f = find(fd);
  if (generation != generation_ || f == nullptr || !f->file) co_return IoResult{-EBADF};
  if (fail_io(loop.rng())) co_return IoResult{-EIO};
  if (buf.empty()) co_return IoResult{0};
  if (!take_space(f->file->cached.size(), offset + buf.size())) co_return IoResult{-ENOSPC};
  FileOp op{offset, Bytes(buf.begin(), buf.end())};
  apply(f->file->cached, op);
  f->file->pending.push_back(std::move(op));
  co_return IoResult{static_cast<int>(buf.size())};
}

Task<IoResult> SimFs::sync(int fd) {
  Loop& loop = Loop::current();
  Fd* f = find(fd);
  if (f == nullptr) co_return IoResult{-EBADF};
  // The operations issued before the sync began are the ones it covers.
  const std::shared_ptr<File> file = f->file;
  const std::shared_ptr<Dir> dir = f->file ? nullptr : f->dir;
  const std::size_t covered = file ? file->pending.size() : dir->pending.size();
  const std::uint64_t generation = generation_;
  co_await sleep_for(sync_latency(loop.rng()));
  if (generation != generation_) co_return IoResult{-EBADF};
  ++syncs_;
  if (fail_io(loop.rng())) co_return IoResult{-EIO};
  if (file) {
    for (std::size_t i = 0; i < covered; ++i) apply(file->durable, file->pending[i]);
    file->pending.erase(file->pending.begin(),
                        file->pending.begin() + static_cast<std::ptrdiff_t>(covered));
  } else {
    for (std::size_t i = 0; i < covered; ++i) apply(dir->durable, dir->pending[i]);
    dir->pending.erase(dir->pending.begin(),
                       dir->pending.begin() + static_cast<std::ptrdiff_t>(covered));
  }
  co_return IoResult{0};
}

Task<IoResult> SimFs::fdatasync(int fd) { co_return co_await sync(fd); }
Task<IoResult> SimFs::fsync(int fd) { co_return co_await sync(fd); }

Task<IoResult> SimFs::fallocate(int fd, int, std::uint64_t offset, std::uint64_t length) {
  Fd* f = find(fd);
  if (f == nullptr || !f->file) co_return IoResult{-EBADF};
  const std::uint64_t size = f->file->cached.size();
  if (offset + length <= size) co_return IoResult{0};
  if (!take_space(size, offset + length)) co_return IoResult{-ENOSPC};
  FileOp op{offset + length, {}};
  apply(f->file->cached, op);
  f->file->pending.push_back(std::move(op));
  co_return IoResult{0};
}

Task<IoResult> SimFs::rename(int dir_fd, std::string from, std::string to) {
  Fd* d = find(dir_fd);
  if (d == nullptr || !d->dir) co_return IoResult{-EBADF};
  auto it = d->dir->names.find(from);
  if (it == d->dir->names.end()) co_return IoResult{-ENOENT};
  std::shared_ptr<File> file = it->second;
  bind(*d->dir, std::move(to), std::move(file), std::move(from));  // Atomic: one operation.
  co_return IoResult{0};
}

Task<IoResult> SimFs::unlink(int dir_fd, std::string name) {
  Fd* d = find(dir_fd);
  if (d == nullptr || !d->dir) co_return IoResult{-EBADF};
  if (!d->dir->names.contains(name)) co_return IoResult{-ENOENT};
  bind(*d->dir, std::move(name), nullptr);
  co_return IoResult{0};
}

void SimFs::unlink_now(int dir_fd, const std::string& name) noexcept {
  Fd* d = find(dir_fd);
  if (d != nullptr && d->dir && d->dir->names.contains(name)) bind(*d->dir, name, nullptr);
}

std::vector<std::string> SimFs::list(int dir_fd) {
  std::vector<std::string> names;
  if (Fd* d = find(dir_fd); d != nullptr && d->dir) {
    for (const auto& [name, f] : d->dir->names) names.push_back(name);
  }
  return names;
}

IoResult SimFs::file_size(int fd, std::uint64_t& size) {
  Fd* f = find(fd);
  if (f == nullptr || !f->file) return IoResult{-EBADF};
  size = f->file->cached.size();
  return IoResult{0};
}

IoResult SimFs::truncate(int fd, std::uint64_t size) {
  Fd* f = find(fd);
  if (f == nullptr || !f->file) return IoResult{-EBADF};
  FileOp op{size, {}};
  apply(f->file->cached, op);
  f->file->pending.push_back(std::move(op));
  return IoResult{0};
}

}  // namespace uraft::sim
