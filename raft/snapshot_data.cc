#include "raft/snapshot_data.h"

#include <algorithm>

#include "net/crc32c.h"
#include "raft/storage.h"

namespace uraft {
namespace {

std::span<const std::byte> byte_span(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

class MemorySource final : public SnapshotData::Source {
 public:
  explicit MemorySource(std::string bytes) : bytes_(std::move(bytes)), crc_(crc32c(byte_span(bytes_))) {}
  std::uint64_t size() const noexcept override { return bytes_.size(); }
  std::uint32_t crc() const noexcept override { return crc_; }
  void read(std::uint64_t offset, std::span<char> out) const override {
    std::copy_n(bytes_.data() + offset, out.size(), out.data());
  }

 private:
  std::string bytes_;
  std::uint32_t crc_;
};

}  // namespace

SnapshotData::SnapshotData(std::string bytes)
    : source_(std::make_shared<MemorySource>(std::move(bytes))) {}

std::string SnapshotData::read(std::uint64_t offset, std::size_t max) const {
  if (offset >= size()) return {};
  std::string out(std::min<std::uint64_t>(max, size() - offset), '\0');
  source_->read(offset, out);
  return out;
}

bool operator==(const SnapshotData& a, const SnapshotData& b) {
  if (a.size() != b.size() || a.crc() != b.crc()) return false;
  for (std::uint64_t at = 0; at < a.size(); at += kSnapshotPieceBytes) {
    if (a.read(at, kSnapshotPieceBytes) != b.read(at, kSnapshotPieceBytes)) return false;
  }
  return true;
}

Task<void> MemorySnapshotSink::append(std::string bytes) {
  crc_ = crc32c(byte_span(bytes), crc_);
  bytes_ += bytes;
  co_return;
}

Task<SnapshotData> MemorySnapshotSink::finish() {
  co_return SnapshotData(std::move(bytes_));
}

std::unique_ptr<SnapshotSink> Storage::snapshot_sink(LogIndex, Term) {
  return std::make_unique<MemorySnapshotSink>();
}

}  // namespace uraft
