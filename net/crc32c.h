// CRC32C (Castagnoli), the checksum of every frame. It uses the SSE4.2 crc32 instruction when
// the CPU has it (detected at run time, so the build needs no -msse4.2), and a table-driven
// loop otherwise; both are exposed so tests can check they agree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace uraft {

// The CRC32C of `data`, continuing from `crc`, the value returned for the bytes before it
// (0 to start): crc32c(ab) == crc32c(b, crc32c(a)).
[[nodiscard]] std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0) noexcept;

// Slicing-by-8 tables; any CPU.
[[nodiscard]] std::uint32_t crc32c_portable(std::span<const std::byte> data,
                                            std::uint32_t crc = 0) noexcept;

// Whether this CPU has the SSE4.2 crc32 instruction (checked once).
[[nodiscard]] bool crc32c_hardware_available() noexcept;

// The crc32 instruction. Precondition: crc32c_hardware_available().
[[nodiscard]] std::uint32_t crc32c_hardware(std::span<const std::byte> data,
                                            std::uint32_t crc = 0) noexcept;

}  // namespace uraft
