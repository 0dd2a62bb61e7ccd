// The record format of WalStorage's segment files (docs/storage.md): a 16-byte header —
// payload length (u32), type (u8), three zero bytes, CRC32C of the payload (u32), CRC32C of
// the header's first 12 bytes (u32) — then the payload. All integers little-endian.
// A header of sixteen zero bytes marks the end of the written part of a preallocated file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace uraft {

enum class WalRecordType : std::uint8_t {
  kSegmentHeader = 1,  // First in every segment: its sequence number and the state it starts from.
  kHardState = 2,      // Term and vote.
  kEntries = 3,        // A batch of entries from index `first` on (replacing any from there).
  kSnapshot = 4,       // A snapshot file became current (and what it did to the log).
  kSeal = 5,           // Last in every segment but the newest: the log goes on in the next one.
};

inline constexpr std::size_t kWalRecordHeaderBytes = 16;
// A record's payload is at most this large (a bound on one append's bytes).
inline constexpr std::size_t kWalRecordPayloadMax = std::size_t{1} << 30;
// Torn writes are looked for in units of this size (a disk sector).
inline constexpr std::size_t kWalSectorBytes = 512;

// Appends one record (header and payload) to `out`.
void append_wal_record(std::vector<std::byte>& out, WalRecordType type,
                       std::span<const std::byte> payload);

enum class WalReadStatus : std::uint8_t {
  kOk,
  kEnd,         // Sixteen zero bytes: nothing was written here.
  kTruncated,   // The file ends inside the header or the payload.
  kBadHeader,   // The header's checksum (or its zero bytes, or its length bound) is wrong.
  kBadPayload,  // The payload's checksum is wrong.
};

struct WalRecordView {
  WalRecordType type{};
  std::span<const std::byte> payload;
  std::size_t size = 0;  // Header and payload.
};

// Reads the record at `offset` of `file` (which holds the file's bytes).
WalReadStatus read_wal_record(std::span<const std::byte> file, std::size_t offset,
                              WalRecordView& out);

const char* to_string(WalReadStatus status) noexcept;

}  // namespace uraft
