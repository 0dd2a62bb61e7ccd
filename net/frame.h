// A frame puts one message on the wire: a fixed header (magic, version, cluster id, type,
// request id, payload length, CRC32C) and then the codec's payload. Decoding checks the header
// before it trusts the length, and the CRC before it looks at the payload; bad input becomes
// a FrameError for the transport to count and log, never a crash.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "net/codec.h"
#include "net/message.h"

namespace uraft {

inline constexpr std::string_view kFrameMagic = "URFT";
inline constexpr std::uint8_t kFrameVersion = 1;

// Header layout, integers little-endian:
//   magic[4] version:u8 cluster_id:u64 type:u8 request_id:u64 payload_bytes:u32 crc32c:u32
// The CRC covers the header up to the CRC field, then the payload.
inline constexpr std::size_t kFrameHeaderBytes = 30;
static_assert(kFrameMagic.size() == 4);
static_assert(kFrameHeaderBytes == 4 + 1 + 8 + 1 + 8 + 4 + 4);

// Bounds what a peer can make us buffer on the strength of a length field not yet covered by
// a checked CRC. Honest frames are far smaller (AppendEntries batches and snapshot chunks are
// bounded by raft/ to a few MiB); 64 MiB leaves headroom for those without letting a corrupt
// length hold gigabytes per connection.
inline constexpr std::size_t kFrameBytesMax = std::size_t{64} << 20;
inline constexpr std::size_t kFramePayloadBytesMax = kFrameBytesMax - kFrameHeaderBytes;
static_assert(kFramePayloadBytesMax <= UINT32_MAX, "the length field is a u32");

// In the order decode_frame checks them; keep kBadPayload last (kFrameErrorCount).
enum class FrameError : std::uint8_t {
  kNeedMoreBytes,   // A partial frame: a stream reader waits for more bytes.
  kBadMagic,        // Not a uraft frame (or the stream lost its place).
  kUnknownVersion,  // A peer speaking another version of the format.
  kOversized,       // A payload length above kFramePayloadBytesMax.
  kBadCrc,          // Corrupted in transit.
  kWrongCluster,    // A peer from another cluster (a stale address, a misconfiguration).
  kUnknownType,     // A message type this version does not know.
  kBadPayload,      // The payload does not decode (DecodedFrame::payload_error says why).
};
inline constexpr std::size_t kFrameErrorCount =
    static_cast<std::size_t>(FrameError::kBadPayload) + 1;
[[nodiscard]] std::string_view to_string(FrameError e) noexcept;

// One counter per FrameError, for a transport to bump on each rejected frame and log.
struct FrameErrorCounters {
  std::array<std::uint64_t, kFrameErrorCount> by_error{};

  void count(FrameError e) noexcept { ++by_error[static_cast<std::size_t>(e)]; }
  [[nodiscard]] std::uint64_t operator[](FrameError e) const noexcept {
    return by_error[static_cast<std::size_t>(e)];
  }
  [[nodiscard]] std::uint64_t total() const noexcept;
};
// The non-zero counters as "bad_crc=2 wrong_cluster=1", or "none".
[[nodiscard]] std::string to_string(const FrameErrorCounters& counters);

// Appends the frame for m to out (which may already hold earlier frames). Returns false, with
// out unchanged, if the payload exceeds kFramePayloadBytesMax. request_id pairs an RPC's
// request with its reply; 0 means none.
[[nodiscard]] bool encode_frame(std::uint64_t cluster_id, std::uint64_t request_id,
                                const Message& m, std::string& out);

struct [[nodiscard]] DecodedFrame {
  std::optional<FrameError> error;
  std::optional<DecodeError> payload_error;  // Set with FrameError::kBadPayload.
  // The whole frame's size, once the header is readable (kFrameHeaderBytes before): on success
  // the bytes to consume; on kNeedMoreBytes how many a reader must hold before trying again.
  // After any other error the stream cannot be trusted: close it, or drop the datagram.
  std::size_t frame_bytes = kFrameHeaderBytes;
  std::uint64_t request_id = 0;
  Message message;  // Meaningful only when there is no error.
};

// Decodes the frame at the front of `bytes`; later bytes (the next frames) are left alone.
DecodedFrame decode_frame(std::span<const std::byte> bytes, std::uint64_t expected_cluster_id);

}  // namespace uraft
