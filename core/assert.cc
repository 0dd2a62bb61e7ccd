#include "core/assert.h"

#include <cstdio>
#include <cstdlib>

namespace uraft {
namespace {
thread_local AssertContext::Describe t_describe = nullptr;
thread_local const void* t_ctx = nullptr;
}  // namespace

void AssertContext::set(Describe describe, const void* ctx) noexcept {
  t_describe = describe;
  t_ctx = ctx;
}

void assert_fail(const char* file, int line, const char* cond) noexcept {
  char context[256] = "";
  if (t_describe != nullptr) t_describe(t_ctx, context, sizeof context);
  std::fprintf(stderr, "%s:%d: assertion failed: %s%s%s\n", file, line, cond,
               context[0] != '\0' ? " | " : "", context);
  std::fflush(stderr);
  std::abort();
}

}  // namespace uraft
