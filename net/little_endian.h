// Fixed-width little-endian integers in byte buffers: the frame header and the TCP
// handshake write and read them the same way.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uraft {

inline void store_le(char* dst, std::uint64_t v, std::size_t bytes) noexcept {
  for (std::size_t i = 0; i < bytes; ++i) dst[i] = static_cast<char>(v >> (8 * i));
}

inline std::uint64_t load_le(const std::byte* src, std::size_t bytes) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) v |= std::to_integer<std::uint64_t>(src[i]) << (8 * i);
  return v;
}

}  // namespace uraft
