// The compact binary encoding of every uraft::Message: each field in declaration order, integers
// as LEB128 varints, strings as a varint length and the bytes, AppendEntries' entries as one
// batch behind a varint count. The type is not in the payload: the frame header carries it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "net/message.h"

namespace uraft {

// A message's type on the wire: its index in the Message variant (codec.cc checks each one).
enum class MessageType : std::uint8_t {
  kRequestVoteArgs = 0,
  kRequestVoteReply = 1,
  kAppendEntriesArgs = 2,
  kAppendEntriesReply = 3,
  kInstallSnapshotArgs = 4,
  kInstallSnapshotReply = 5,
  kClientRequest = 6,
  kClientReply = 7,
  kTimeoutNowArgs = 8,
  kTimeoutNowReply = 9,
};
inline constexpr std::size_t kMessageTypeCount = std::variant_size_v<Message>;

[[nodiscard]] inline MessageType message_type(const Message& m) noexcept {
  return static_cast<MessageType>(m.index());
}

enum class DecodeError : std::uint8_t {
  kUnknownType,         // A type number no Message alternative has.
  kTruncated,           // The payload ends inside a field.
  kOverlongVarint,      // A varint longer than its minimal form, or wider than 64 bits.
  kOutOfRange,          // A value too large for its field (a NodeId above 2^32 - 1, a bool of 2).
  kLengthExceedsInput,  // A string length or entry count more than the bytes left could hold.
  kTrailingBytes,       // Bytes left over after the last field.
};
[[nodiscard]] std::string_view to_string(DecodeError e) noexcept;

// Appends m's payload to out. A reused, warm `out` encodes without allocating.
void encode_message(const Message& m, std::string& out);

struct [[nodiscard]] DecodedMessage {
  Message message;  // Meaningful only when there is no error.
  std::optional<DecodeError> error;
};

// Decodes all of `payload` as a message of `type`. It never reads outside `payload` and never
// allocates more than `payload` could justify: lengths and counts are checked against the bytes
// left before anything is reserved.
DecodedMessage decode_message(MessageType type, std::span<const std::byte> payload);

[[nodiscard]] inline std::span<const std::byte> byte_span(std::string_view s) noexcept {
  return std::as_bytes(std::span(s.data(), s.size()));
}

}  // namespace uraft
