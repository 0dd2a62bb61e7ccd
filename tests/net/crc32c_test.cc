// Tests for net/crc32c.h: published vectors, and the hardware and portable paths agreeing.
#include "net/crc32c.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "net/codec.h"

namespace uraft {
namespace {

struct Vector {
  std::string bytes;
  std::uint32_t crc;
};

std::vector<Vector> known_vectors() {
  std::string ascending(32, '\0');
  std::string descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  return {
      {"", 0x00000000},
      {"a", 0xC1D04330},
      {"123456789", 0xE3069283},  // The check value of the CRC-32C catalogue entry.
      {std::string(32, '\0'), 0x8A9136AA},  // RFC 3720 B.4.
      {std::string(32, '\xff'), 0x62A8AB43},
      {ascending, 0x46DD794E},
      {descending, 0x113FDB5C},
  };
}

TEST_CASE("every implementation gives the published CRC32C vectors") {
  // Goal: the portable tables, the crc32 instruction and the dispatcher all match the standard.
  MESSAGE("SSE4.2 crc32 instruction available: " << crc32c_hardware_available());
  for (const Vector& v : known_vectors()) {
    CAPTURE(v.bytes.size());
    CHECK(crc32c_portable(byte_span(v.bytes)) == v.crc);
    CHECK(crc32c(byte_span(v.bytes)) == v.crc);
    if (crc32c_hardware_available()) CHECK(crc32c_hardware(byte_span(v.bytes)) == v.crc);
  }
}

TEST_CASE("hardware and portable CRC32C agree on random unaligned buffers") {
  // Goal: the two paths are interchangeable for every length and alignment.
  std::mt19937_64 rng(0x63726333);
  std::string buffer(4096 + 16, '\0');
  for (char& c : buffer) c = static_cast<char>(rng());
  for (int i = 0; i < 20000; ++i) {
    const std::size_t offset = rng() % 16;
    const std::size_t size = rng() % 4 == 0 ? rng() % 4096 : rng() % 64;
    const auto bytes = byte_span(buffer).subspan(offset, size);
    const auto start = static_cast<std::uint32_t>(rng());
    const std::uint32_t expected = crc32c_portable(bytes, start);
    REQUIRE(crc32c(bytes, start) == expected);
    if (crc32c_hardware_available()) REQUIRE(crc32c_hardware(bytes, start) == expected);
  }
}

TEST_CASE("a CRC32C can be continued across pieces") {
  // Goal: crc32c(ab) == crc32c(b, crc32c(a)) at every split, which frames rely on.
  const std::string text = "The quick brown fox jumps over the lazy dog, twice over the lazy dog.";
  const std::uint32_t whole = crc32c(byte_span(text));
  for (std::size_t split = 0; split <= text.size(); ++split) {
    const auto a = byte_span(text).first(split);
    const auto b = byte_span(text).subspan(split);
    CHECK(crc32c(b, crc32c(a)) == whole);
    CHECK(crc32c_portable(b, crc32c_portable(a)) == whole);
  }
}

}  // namespace
}  // namespace uraft
