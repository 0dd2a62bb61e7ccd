// Batch: many write commands in one Raft log entry, so pipelined and concurrent writes share
// one append, one fsync and one replication round. Encoding and decoding are pure; decoding
// validates every length against its bound and the bytes left, so a corrupt entry becomes a
// BatchError, never a crash or an unbounded allocation. Applying a batch gives one reply per
// command, in order, for the server to hand back to each command's client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kv/resp.h"

namespace uraft::kv {

class Store;

// Entry layout, integers little-endian, lengths as LEB128 varints (net/varint.h):
//   version u8 (kBatchVersion) | command_count u32
//   | command_count x (argc varint >= 1, argc x (arg_len varint, arg bytes))
// An empty entry (0 bytes) is a batch of no commands: a server may propose one as a no-op.
inline constexpr std::uint8_t kBatchVersion = 1;
inline constexpr std::size_t kBatchHeaderBytes = 1 + 4;

// Commands in one batch. It bounds the replies (and the decoder's bookkeeping) per entry;
// 50 clients pipelining 16 deep make 800, far below.
inline constexpr std::size_t kBatchCommandsMax = std::size_t{1} << 16;
// Bytes of one entry. One maximal request (kRequestBytesMax, plus its varints) always fits in
// an otherwise empty batch, and the entry still fits one frame (net/frame.h: 64 MiB) with room
// for the AppendEntries around it. A server will usually cut batches far smaller (BatchEncoder
// ::bytes()) to keep latency and fsync sizes down.
inline constexpr std::size_t kBatchBytesMax = std::size_t{40} << 20;
static_assert(kBatchBytesMax >= kBatchHeaderBytes + kRequestBytesMax + 16 * 1024);

enum class BatchError : std::uint8_t {
  kUnknownVersion,      // The first byte is not kBatchVersion.
  kTruncated,           // Ends inside the header or a field.
  kOverlongVarint,      // A varint not in its minimal form.
  kTooBig,              // The entry is over kBatchBytesMax.
  kTooManyCommands,     // command_count over kBatchCommandsMax.
  kNoCommands,          // command_count 0 (the batch of no commands is the empty entry).
  kEmptyCommand,        // A command with argc 0.
  kTooManyArguments,    // argc over kArrayElementsMax.
  kArgumentTooLong,     // An argument over kBulkBytesMax.
  kLengthExceedsInput,  // A count or length larger than the bytes left could hold.
  kTrailingBytes,       // Bytes after the last command.
};
[[nodiscard]] std::string_view to_string(BatchError e) noexcept;

// Builds one entry. Usage: add() each command while it returns true; take() the entry.
class BatchEncoder {
 public:
  BatchEncoder();

  // Appends a command (argv not empty, argc <= kArrayElementsMax, each argument at most
  // kBulkBytesMax: asserted, as the parser guarantees them). Returns false, with the batch
  // unchanged, if the batch is full (kBatchCommandsMax commands, or kBatchBytesMax bytes with
  // this command): propose this batch and add the command to the next. A command always fits
  // an empty batch.
  [[nodiscard]] bool add(std::span<const std::string_view> argv);

  [[nodiscard]] std::size_t commands() const noexcept { return commands_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return entry_.size(); }
  [[nodiscard]] bool empty() const noexcept { return commands_ == 0; }

  // The entry; the encoder starts over, empty.
  [[nodiscard]] std::string take();

 private:
  std::string entry_;
  std::size_t commands_ = 0;
};

// Encodes a whole list of commands at once (tests, forwarding). Precondition: they fit one
// batch (asserted).
[[nodiscard]] std::string encode_batch(std::span<const std::vector<std::string_view>> commands);

// A decoded entry. Argument views point into the entry's bytes, which must outlive it.
struct DecodedBatch {
  std::vector<std::string_view> args;  // Every command's arguments, one after another.
  std::vector<std::size_t> ends;       // ends[i]: one past command i's last argument in args.

  [[nodiscard]] std::size_t size() const noexcept { return ends.size(); }
  [[nodiscard]] std::span<const std::string_view> command(std::size_t i) const;
};

// Decodes a whole entry into `out` (cleared first; reused without allocating once warm).
// On error `out` is left empty.
[[nodiscard]] std::optional<BatchError> decode_batch(std::string_view entry, DecodedBatch& out);

// The replies to one batch, concatenated, with where each ends.
struct BatchReplies {
  std::string bytes;
  std::vector<std::size_t> ends;  // ends[i]: one past reply i's last byte in bytes.

  [[nodiscard]] std::size_t size() const noexcept { return ends.size(); }
  [[nodiscard]] std::string_view reply(std::size_t i) const;
  void clear() noexcept;
};

// Decodes `entry` and applies each command to the store in order, appending one reply per
// command to `replies` (cleared first). A corrupt entry is refused whole: the store is
// untouched, `replies` is empty, and the error is returned. Every replica sees the same entry,
// so every replica refuses it alike and stays in step.
[[nodiscard]] std::optional<BatchError> apply_batch(Store& store, std::string_view entry,
                                                    BatchReplies& replies);

}  // namespace uraft::kv
