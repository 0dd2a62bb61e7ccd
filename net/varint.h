// Unsigned LEB128 varints: 7 bits per byte, low group first, the high bit set on every byte
// but the last. Decoding is bounds-checked and accepts only the minimal form, so each value
// has exactly one encoding and a decoded message re-encodes to the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace uraft {

// A 64-bit value needs at most ceil(64 / 7) = 10 bytes.
inline constexpr std::size_t kVarintBytesMax = 10;

[[nodiscard]] constexpr std::size_t varint_bytes(std::uint64_t v) noexcept {
  std::size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

// Appends v to out.
inline void put_varint(std::string& out, std::uint64_t v) {
  char buf[kVarintBytesMax];
  std::size_t n = 0;
  for (; v >= 0x80; v >>= 7) buf[n++] = static_cast<char>(v | 0x80);
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}

enum class VarintStatus : std::uint8_t {
  kOk,
  kTruncated,  // The input ends before the last byte.
  kOverlong,   // Not the minimal form, or more than 64 bits.
};

struct [[nodiscard]] VarintDecoded {
  std::uint64_t value = 0;
  std::size_t bytes = 0;  // How many bytes of the input the varint took (0 unless kOk).
  VarintStatus status = VarintStatus::kOk;
};

// Reads the varint at the front of `in`, never past its end.
constexpr VarintDecoded decode_varint(std::span<const std::byte> in) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < in.size() && i < kVarintBytesMax; ++i) {
    const auto b = std::to_integer<std::uint64_t>(in[i]);
    // The tenth byte holds bit 63 only.
    if (i == kVarintBytesMax - 1 && b > 1) return {0, 0, VarintStatus::kOverlong};
    value |= (b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      // A last group of zero bits after the first byte could have been left out.
      if (b == 0 && i > 0) return {0, 0, VarintStatus::kOverlong};
      return {value, i + 1, VarintStatus::kOk};
    }
  }
  // Ten bytes always end the loop with a return above, so we ran out of input.
  return {0, 0, VarintStatus::kTruncated};
}

}  // namespace uraft
