#include "net/frame.h"

#include <cstring>

#include "core/assert.h"
#include "net/crc32c.h"
#include "net/little_endian.h"

namespace uraft {
namespace {

// Field offsets in the header (layout in frame.h).
constexpr std::size_t kMagicAt = 0;
constexpr std::size_t kVersionAt = 4;
constexpr std::size_t kClusterIdAt = 5;
constexpr std::size_t kTypeAt = 13;
constexpr std::size_t kRequestIdAt = 14;
constexpr std::size_t kPayloadBytesAt = 22;
constexpr std::size_t kCrcAt = 26;
static_assert(kCrcAt + 4 == kFrameHeaderBytes);

// The CRC both sides compute: the header before its CRC field, then the payload.
std::uint32_t frame_crc(std::span<const std::byte> frame) noexcept {
  return crc32c(frame.subspan(kFrameHeaderBytes), crc32c(frame.first(kCrcAt)));
}

}  // namespace

std::string_view to_string(FrameError e) noexcept {
  switch (e) {
    case FrameError::kNeedMoreBytes: return "need_more_bytes";
    case FrameError::kBadMagic: return "bad_magic";
    case FrameError::kUnknownVersion: return "unknown_version";
    case FrameError::kOversized: return "oversized";
    case FrameError::kBadCrc: return "bad_crc";
    case FrameError::kWrongCluster: return "wrong_cluster";
    case FrameError::kUnknownType: return "unknown_type";
    case FrameError::kBadPayload: return "bad_payload";
  }
  return "invalid_frame_error";
}

std::uint64_t FrameErrorCounters::total() const noexcept {
  std::uint64_t sum = 0;
  for (std::uint64_t n : by_error) sum += n;
  return sum;
}

std::string to_string(const FrameErrorCounters& counters) {
  std::string text;
  for (std::size_t i = 0; i < kFrameErrorCount; ++i) {
    if (counters.by_error[i] == 0) continue;
    if (!text.empty()) text += ' ';
    text += to_string(static_cast<FrameError>(i));
    text += '=';
    text += std::to_string(counters.by_error[i]);
  }
  return text.empty() ? "none" : text;
}

bool encode_frame(std::uint64_t cluster_id, std::uint64_t request_id, const Message& m,
                  std::string& out) {
  const std::size_t start = out.size();
  out.append(kFrameHeaderBytes, '\0');
  encode_message(m, out);
  const std::size_t payload_bytes = out.size() - start - kFrameHeaderBytes;
  if (payload_bytes > kFramePayloadBytesMax) {
    out.resize(start);
    return false;
  }
  char* header = out.data() + start;
  std::memcpy(header + kMagicAt, kFrameMagic.data(), kFrameMagic.size());
  store_le(header + kVersionAt, kFrameVersion, 1);
  store_le(header + kClusterIdAt, cluster_id, 8);
  store_le(header + kTypeAt, static_cast<std::uint8_t>(message_type(m)), 1);
  store_le(header + kRequestIdAt, request_id, 8);
  store_le(header + kPayloadBytesAt, payload_bytes, 4);
  const auto frame = byte_span(std::string_view(out).substr(start));
  store_le(header + kCrcAt, frame_crc(frame), 4);
  return true;
}

DecodedFrame decode_frame(std::span<const std::byte> bytes, std::uint64_t expected_cluster_id) {
  DecodedFrame result;
  auto fail = [&result](FrameError e) {
    result.error = e;
    return std::move(result);
  };
  // Magic and version come first: another version may lay out the rest differently. The length
  // is bounded before a reader waits for that many bytes.
  if (bytes.size() < kFrameHeaderBytes) return fail(FrameError::kNeedMoreBytes);
  if (std::memcmp(bytes.data() + kMagicAt, kFrameMagic.data(), kFrameMagic.size()) != 0) {
    return fail(FrameError::kBadMagic);
  }
  if (load_le(bytes.data() + kVersionAt, 1) != kFrameVersion) {
    return fail(FrameError::kUnknownVersion);
  }
  const std::uint64_t payload_bytes = load_le(bytes.data() + kPayloadBytesAt, 4);
  if (payload_bytes > kFramePayloadBytesMax) return fail(FrameError::kOversized);
  result.frame_bytes = kFrameHeaderBytes + payload_bytes;
  if (bytes.size() < result.frame_bytes) return fail(FrameError::kNeedMoreBytes);

  // The rest of the header is trusted only once the CRC matches.
  const auto frame = bytes.first(result.frame_bytes);
  if (load_le(frame.data() + kCrcAt, 4) != frame_crc(frame)) return fail(FrameError::kBadCrc);
  if (load_le(frame.data() + kClusterIdAt, 8) != expected_cluster_id) {
    return fail(FrameError::kWrongCluster);
  }
  const auto type = static_cast<MessageType>(load_le(frame.data() + kTypeAt, 1));
  DecodedMessage decoded = decode_message(type, frame.subspan(kFrameHeaderBytes));
  if (decoded.error == DecodeError::kUnknownType) return fail(FrameError::kUnknownType);
  if (decoded.error) {
    result.payload_error = decoded.error;
    return fail(FrameError::kBadPayload);
  }
  result.request_id = load_le(frame.data() + kRequestIdAt, 8);
  result.message = std::move(decoded.message);
  URAFT_ASSERT(message_type(result.message) == type);
  return result;
}

}  // namespace uraft
