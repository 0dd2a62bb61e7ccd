// Store: uraftd's replicated state machine, a map from byte-string keys to byte-string values.
// Deterministic: the same commands in the same order give every replica the same state and the
// same replies, with no clock, randomness or I/O. Writes arrive through the Raft log (apply),
// reads are served at a linearizable read point (read), and the whole state can be captured
// as a versioned, checksummed snapshot and restored from one, refusing corrupt bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

namespace uraft::kv {

// Snapshot layout, integers little-endian, lengths and counts as LEB128 varints (net/varint.h):
//   magic "UKVS" | version u8 | key_count varint
//   | key_count x (key_len varint, key bytes, value_len varint, value bytes)
//   | crc32c u32 of every byte before it
// Keys are written in byte order, so equal states give equal snapshots.
inline constexpr std::string_view kSnapshotMagic = "UKVS";
inline constexpr std::uint8_t kSnapshotVersion = 1;

enum class SnapshotError : std::uint8_t {
  kTooShort,            // Fewer bytes than the fixed header and checksum.
  kBadMagic,            // Not a uraftd snapshot.
  kUnknownVersion,      // Written by another version of the format.
  kBadChecksum,         // Corrupted on disk or in transit.
  kTruncated,           // Ends inside a field.
  kOverlongVarint,      // A varint not in its minimal form.
  kLengthExceedsInput,  // A length or count larger than the bytes left could hold.
  kValueTooLong,        // A key or value above kBulkBytesMax (no command could have made it).
  kKeysOutOfOrder,      // Keys not strictly increasing (a duplicate, or not ours).
  kTrailingBytes,       // Bytes between the last pair and the checksum.
};
[[nodiscard]] std::string_view to_string(SnapshotError e) noexcept;

// Fills `out` with the snapshot's bytes from `offset`.
using SnapshotReader = std::function<void(std::uint64_t offset, std::span<char> out)>;

struct StoreStats {
  std::size_t keys = 0;
  // Bytes of keys and values (not counting the map's own overhead).
  std::size_t data_bytes = 0;
  // Commands given to apply() since construction or the last restore().
  std::uint64_t commands_applied = 0;
};

class Store {
 public:
  Store();

  // Executes one command from the log and appends its reply to `out`. Any argv gives a
  // reply, never a crash: a write or read command is executed; anything else (an unknown or
  // local command, a wrong arity, bad syntax) leaves the state alone and replies the same
  // error route_command would have. So a log entry decodes to the same replies everywhere.
  void apply(std::span<const std::string_view> argv, std::string& out);

  // Executes a read command (GET, EXISTS, MGET, STRLEN, DBSIZE) and appends its reply. A
  // command that is not a read gets an error reply and changes nothing.
  void read(std::span<const std::string_view> argv, std::string& out) const;

  // The whole state in the snapshot layout above, handed to `out` in pieces of about
  // `piece` bytes (at least one whole pair each). Costs O(n log n) in the keys (the sort that
  // makes it canonical) and one pass over the data.
  void snapshot(const std::function<void(std::string_view)>& out,
                std::size_t piece = std::size_t{1} << 20) const;
  // Appends the whole state to `out`.
  void snapshot(std::string& out) const;
  [[nodiscard]] std::string snapshot() const;

  // Replaces the whole state with the snapshot's, `size` bytes that `read` hands over a piece
  // at a time (a file's, read without holding them all). On error the state is unchanged and
  // the caller must not use these bytes (uraftd refuses to start, or drops the snapshot).
  [[nodiscard]] std::optional<SnapshotError> restore(std::uint64_t size, const SnapshotReader& read);
  [[nodiscard]] std::optional<SnapshotError> restore(std::string_view bytes);

  [[nodiscard]] StoreStats stats() const noexcept;

  // The value of `key`, or nullptr (for tests and tools; valid until the next apply/restore).
  [[nodiscard]] const std::string* find(std::string_view key) const;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using Map = std::unordered_map<std::string, std::string, Hash, std::equal_to<>>;

  void set_value(std::string_view key, std::string_view value);
  bool erase(std::string_view key);
  void clear();
  // INCRBY and friends: adds delta to the integer at key.
  void increment(std::string_view key, std::int64_t delta, std::string& out);

  Map map_;
  std::size_t data_bytes_ = 0;  // Sum of key and value sizes in map_.
  std::uint64_t commands_applied_ = 0;
};

}  // namespace uraft::kv
