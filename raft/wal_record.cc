#include "raft/wal_record.h"

#include <algorithm>

#include "core/assert.h"
#include "net/crc32c.h"
#include "net/little_endian.h"

namespace uraft {

void append_wal_record(std::vector<std::byte>& out, WalRecordType type,
                       std::span<const std::byte> payload) {
  URAFT_ASSERT(payload.size() <= kWalRecordPayloadMax);
  char header[kWalRecordHeaderBytes] = {};
  store_le(header, payload.size(), 4);
  header[4] = static_cast<char>(type);
  store_le(header + 8, crc32c(payload), 4);
  const auto* h = reinterpret_cast<const std::byte*>(header);
  store_le(header + 12, crc32c(std::span(h, 12)), 4);
  out.insert(out.end(), h, h + kWalRecordHeaderBytes);
  out.insert(out.end(), payload.begin(), payload.end());
}

WalReadStatus read_wal_record(std::span<const std::byte> file, std::size_t offset,
                              WalRecordView& out) {
  URAFT_ASSERT(offset <= file.size());
  const std::span<const std::byte> rest = file.subspan(offset);
  if (rest.size() < kWalRecordHeaderBytes) {
    const bool zero = std::all_of(rest.begin(), rest.end(), [](std::byte b) { return b == std::byte{0}; });
    return zero ? WalReadStatus::kEnd : WalReadStatus::kTruncated;
  }
  const std::byte* h = rest.data();
  if (std::all_of(h, h + kWalRecordHeaderBytes, [](std::byte b) { return b == std::byte{0}; })) {
    return WalReadStatus::kEnd;
  }
  if (load_le(h + 12, 4) != crc32c(std::span(h, 12))) return WalReadStatus::kBadHeader;
  const std::uint64_t length = load_le(h, 4);
  if (length > kWalRecordPayloadMax || h[5] != std::byte{0} || h[6] != std::byte{0} ||
      h[7] != std::byte{0}) {
    return WalReadStatus::kBadHeader;
  }
  if (rest.size() - kWalRecordHeaderBytes < length) return WalReadStatus::kTruncated;
  const std::span<const std::byte> payload = rest.subspan(kWalRecordHeaderBytes, length);
  if (load_le(h + 8, 4) != crc32c(payload)) return WalReadStatus::kBadPayload;
  out.type = static_cast<WalRecordType>(h[4]);
  out.payload = payload;
  out.size = kWalRecordHeaderBytes + length;
  return WalReadStatus::kOk;
}

const char* to_string(WalReadStatus status) noexcept {
  switch (status) {
    case WalReadStatus::kOk: return "ok";
    case WalReadStatus::kEnd: return "end";
    case WalReadStatus::kTruncated: return "record cut short by the end of the file";
    case WalReadStatus::kBadHeader: return "bad record header checksum";
    case WalReadStatus::kBadPayload: return "bad record payload checksum";
  }
  return "?";
}

}  // namespace uraft
