// SnapshotData: a snapshot's bytes wherever storage keeps them, read a piece at a time; and
// SnapshotSink: where a new snapshot is written a piece at a time. With WalStorage both are
// files, so a leader sends, a follower receives and a service restores a large state without
// a second copy of it in memory; MemStorage and SimStorage keep the bytes in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/task.h"
#include "net/types.h"

namespace uraft {

// The piece a snapshot is read, written or checked in when no other size is asked for.
inline constexpr std::size_t kSnapshotPieceBytes = std::size_t{1} << 20;

// Immutable and cheap to copy (the bytes are shared). Reads block (a file's pages, mostly
// in the page cache) and may run on any thread; an I/O error throws std::runtime_error.
class SnapshotData {
 public:
  class Source {
   public:
    virtual ~Source() = default;
    virtual std::uint64_t size() const noexcept = 0;
    // CRC32C of all the bytes.
    virtual std::uint32_t crc() const noexcept = 0;
    // Fills `out` with the bytes from `offset` (offset + out.size() <= size()).
    virtual void read(std::uint64_t offset, std::span<char> out) const = 0;
  };

  SnapshotData() = default;
  // In memory (the lab's snapshots, tests, small services).
  SnapshotData(std::string bytes);  // NOLINT(google-explicit-constructor)
  SnapshotData(const char* bytes) : SnapshotData(std::string(bytes)) {}  // NOLINT
  explicit SnapshotData(std::shared_ptr<const Source> source) : source_(std::move(source)) {}

  std::uint64_t size() const noexcept { return source_ ? source_->size() : 0; }
  bool empty() const noexcept { return size() == 0; }
  std::uint32_t crc() const noexcept { return source_ ? source_->crc() : 0; }
  // Up to `max` bytes from `offset` (none at or past the end).
  std::string read(std::uint64_t offset, std::size_t max) const;
  // All of it: for small snapshots (the lab, tests).
  std::string str() const { return read(0, size()); }
  const Source* source() const noexcept { return source_.get(); }

  friend bool operator==(const SnapshotData& a, const SnapshotData& b);

 private:
  std::shared_ptr<const Source> source_;
};

// Bytes appended in order; finish() hands them over as SnapshotData for save_snapshot (which
// makes them durable). A sink abandoned before finish() leaves nothing behind that counts.
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;
  virtual std::uint64_t size() const noexcept = 0;
  virtual std::uint32_t crc() const noexcept = 0;  // CRC32C of what was appended.
  // Appends `bytes`. Throws (std::runtime_error) if storage cannot take them (a full disk):
  // the sink is then unusable.
  virtual Task<void> append(std::string bytes) = 0;
  // What was appended; the sink takes no more.
  virtual Task<SnapshotData> finish() = 0;
};

// Keeps the bytes in memory.
class MemorySnapshotSink final : public SnapshotSink {
 public:
  std::uint64_t size() const noexcept override { return bytes_.size(); }
  std::uint32_t crc() const noexcept override { return crc_; }
  Task<void> append(std::string bytes) override;
  Task<SnapshotData> finish() override;

 private:
  std::string bytes_;
  std::uint32_t crc_ = 0;
};

}  // namespace uraft
