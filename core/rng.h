// The loop's pseudo-random generator (xoshiro256**, seeded through splitmix64). All
// randomness in uraft is drawn from it, so a simulated run is a function of its seed.
#pragma once

#include <cstdint>

#include "core/assert.h"

namespace uraft {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept { reseed(seed); }

  void reseed(std::uint64_t seed) noexcept {
    for (auto& word : s_) word = splitmix64(seed);
  }

  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [lo, hi], both inclusive (Lemire's multiply-shift; the bias is below 2^-64·span).
  std::uint64_t uniform(std::uint64_t lo, std::uint64_t hi) noexcept {
    URAFT_ASSERT(lo <= hi);
    const std::uint64_t span = hi - lo + 1;
    if (span == 0) return next();  // The whole 64-bit range.
    return lo + static_cast<std::uint64_t>((static_cast<U128>(next()) * span) >> 64);
  }

  // True with probability `numerator / denominator`.
  bool chance(std::uint64_t numerator, std::uint64_t denominator) noexcept {
    URAFT_ASSERT(denominator > 0);
    return uniform(0, denominator - 1) < numerator;
  }

 private:
  __extension__ using U128 = unsigned __int128;

  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::uint64_t s_[4];
};

}  // namespace uraft
