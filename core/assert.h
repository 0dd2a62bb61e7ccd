// URAFT_ASSERT: an always-on assertion for programmer errors (NDEBUG does not remove it).
// On failure it prints file:line, the condition and the current context line (node, term,
// seed: whatever the running code set with AssertContext), then aborts.
#pragma once

namespace uraft {

// The context printed with a failed assertion. Single-threaded code sets it per loop turn;
// it is thread_local so loops on different threads do not mix their contexts.
class AssertContext {
 public:
  using Describe = void (*)(const void* ctx, char* buf, unsigned size);
  static void set(Describe describe, const void* ctx) noexcept;
  static void clear() noexcept { set(nullptr, nullptr); }
};

[[noreturn]] void assert_fail(const char* file, int line, const char* cond) noexcept;

}  // namespace uraft

#define URAFT_ASSERT(cond)                                       \
  do {                                                           \
    if (!(cond)) [[unlikely]]                                    \
      ::uraft::assert_fail(__FILE__, __LINE__, #cond);           \
  } while (0)
