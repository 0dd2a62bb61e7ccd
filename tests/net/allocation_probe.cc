#include "tests/net/allocation_probe.h"

#include <cstdlib>
#include <new>

namespace uraft::test {
namespace {
// Single-threaded test binary: plain globals suffice.
bool g_probing = false;
std::size_t g_largest_bytes = 0;
}  // namespace

AllocationProbe::AllocationProbe() noexcept {
  g_probing = true;
  g_largest_bytes = 0;
}

AllocationProbe::~AllocationProbe() { g_probing = false; }

std::size_t AllocationProbe::largest_bytes() const noexcept { return g_largest_bytes; }

}  // namespace uraft::test

// The replacements every other form of new and delete in libstdc++ forwards to.
void* operator new(std::size_t bytes) {
  if (uraft::test::g_probing && bytes > uraft::test::g_largest_bytes) {
    uraft::test::g_largest_bytes = bytes;
  }
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}

void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
