// URAFT_ASSERT: an always-on assertion for programmer errors (NDEBUG does not remove it).
// A failure prints file:line, the condition and the thread's context (e.g. "node 2 term 5
// seed 17", supplied by whoever runs on this thread), then aborts.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>

namespace uraft {

// Formats the context lazily, only when an assertion fails. One per thread (one per loop).
inline thread_local std::function<std::string()> assert_context;

// Installs a context for the current scope and restores the previous one on exit.
class ScopedAssertContext {
 public:
  explicit ScopedAssertContext(std::function<std::string()> context)
      : previous_(std::exchange(assert_context, std::move(context))) {}
  ~ScopedAssertContext() { assert_context = std::move(previous_); }
  ScopedAssertContext(const ScopedAssertContext&) = delete;
  ScopedAssertContext& operator=(const ScopedAssertContext&) = delete;

 private:
  std::function<std::string()> previous_;
};

[[noreturn]] inline void assert_fail(const char* file, int line, const char* condition) noexcept {
  const std::string context = assert_context ? assert_context() : std::string();
  std::fprintf(stderr, "%s:%d: URAFT_ASSERT(%s) failed%s%s\n", file, line, condition,
               context.empty() ? "" : ": ", context.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace uraft

#define URAFT_ASSERT(cond)                             \
  do {                                                 \
    if (!(cond)) [[unlikely]]                          \
      ::uraft::assert_fail(__FILE__, __LINE__, #cond); \
  } while (false)
