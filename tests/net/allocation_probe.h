// Records the largest single heap allocation made while a probe is alive, so a test can show
// that a decoder reserved no more than its input justified. net_tests replaces operator new.
#pragma once

#include <cstddef>

namespace uraft::test {

class AllocationProbe {
 public:
  AllocationProbe() noexcept;
  ~AllocationProbe();
  AllocationProbe(const AllocationProbe&) = delete;
  AllocationProbe& operator=(const AllocationProbe&) = delete;

  [[nodiscard]] std::size_t largest_bytes() const noexcept;
};

}  // namespace uraft::test
