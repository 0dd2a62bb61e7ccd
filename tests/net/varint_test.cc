// Tests for net/varint.h: sizes at each 7-bit boundary, round trips, truncation and overlong forms.
#include "net/varint.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "net/codec.h"

namespace uraft {
namespace {

VarintDecoded decode(const std::string& bytes) { return decode_varint(byte_span(bytes)); }

std::string encode(std::uint64_t v) {
  std::string out;
  put_varint(out, v);
  return out;
}

TEST_CASE("varints take one byte per 7 bits at every boundary") {
  // Goal: 2^(7k) - 1 is the largest k-byte value, and both sides of each boundary round-trip.
  for (unsigned k = 1; k < kVarintBytesMax; ++k) {
    const std::uint64_t last = (std::uint64_t{1} << (7 * k)) - 1;
    for (std::uint64_t v : {last, last + 1}) {
      const std::string bytes = encode(v);
      CHECK(bytes.size() == varint_bytes(v));
      const VarintDecoded d = decode(bytes);
      CHECK(d.status == VarintStatus::kOk);
      CHECK(d.value == v);
      CHECK(d.bytes == bytes.size());
    }
    CHECK(varint_bytes(last) == k);
    CHECK(varint_bytes(last + 1) == k + 1);
  }
  CHECK(encode(0) == std::string(1, '\0'));
  CHECK(encode(std::numeric_limits<std::uint64_t>::max()).size() == kVarintBytesMax);
  CHECK(decode(encode(std::numeric_limits<std::uint64_t>::max())).value ==
        std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("random varints round-trip and stop at their own end") {
  // Goal: decoding reads exactly the varint's bytes and ignores what follows.
  std::mt19937_64 rng(0x7661726971);
  for (int i = 0; i < 100000; ++i) {
    const unsigned shift = rng() % 64;
    const std::uint64_t v = rng() >> shift;
    const std::string bytes = encode(v) + "\x85\x01";
    const VarintDecoded d = decode(bytes);
    REQUIRE(d.status == VarintStatus::kOk);
    REQUIRE(d.value == v);
    REQUIRE(d.bytes == bytes.size() - 2);
  }
}

TEST_CASE("every truncated varint is reported as truncated") {
  // Goal: a decoder that runs out of input says so instead of reading past the end.
  const std::string bytes = encode(std::numeric_limits<std::uint64_t>::max());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CHECK(decode(bytes.substr(0, n)).status == VarintStatus::kTruncated);
  }
}

TEST_CASE("non-minimal and over-wide varints are overlong") {
  // Goal: each value has one encoding, and nothing beyond 64 bits is accepted.
  CHECK(decode(std::string("\x80\x00", 2)).status == VarintStatus::kOverlong);
  CHECK(decode(std::string("\xff\x80\x00", 3)).status == VarintStatus::kOverlong);
  // Ten bytes whose last carries more than bit 63.
  CHECK(decode(std::string(9, '\xff') + '\x02').status == VarintStatus::kOverlong);
  // Eleven bytes.
  CHECK(decode(std::string(10, '\xff') + '\x01').status == VarintStatus::kOverlong);
  CHECK(decode(std::string(9, '\x80') + '\x00').status == VarintStatus::kOverlong);
  CHECK(decode(std::string(9, '\x80') + '\x01').value == std::uint64_t{1} << 63);
}

}  // namespace
}  // namespace uraft
