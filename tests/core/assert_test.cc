// NDEBUG must not switch URAFT_ASSERT off: define it before anything is included.
#ifndef NDEBUG
#define NDEBUG
#endif

#include "core/assert.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace uraft {
namespace {

struct Death {
  bool aborted = false;
  std::string stderr_text;
};

// Runs `body` in a child process and reports whether it aborted and what it printed.
template <typename Body>
Death run_in_child(Body body) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    signal(SIGABRT, SIG_DFL);  // Not doctest's crash handler: the parent judges the death.
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    body();
    _exit(0);
  }
  close(fds[1]);
  Death death;
  char buffer[512];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;)
    death.stderr_text.append(buffer, n);
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  death.aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  return death;
}

TEST_CASE("URAFT_ASSERT aborts with file:line, the condition and the context, NDEBUG or not") {
  // Goal: a failed assertion is always fatal and says where, what, and on which node.
  const Death death = run_in_child([] {
    const ScopedAssertContext context([] { return std::string("node 2 term 5 seed 17"); });
    const int one = 1;
    URAFT_ASSERT(one + one == 3);
  });
  CHECK(death.aborted);
  CHECK(death.stderr_text.find("assert_test.cc:") != std::string::npos);
  CHECK(death.stderr_text.find("URAFT_ASSERT(one + one == 3) failed: node 2 term 5 seed 17") !=
        std::string::npos);
}

TEST_CASE("URAFT_ASSERT evaluates its condition once and is silent when it holds") {
  // Goal: a passing assertion has no effect beyond evaluating the condition.
  int evaluations = 0;
  URAFT_ASSERT(++evaluations == 1);
  CHECK(evaluations == 1);
  if (evaluations == 2) URAFT_ASSERT(false);  // The implication form compiles and is skipped.
}

TEST_CASE("ScopedAssertContext restores the previous context") {
  // Goal: nested scopes (a loop, then a node on it) unwind to the outer context.
  const ScopedAssertContext outer([] { return std::string("loop"); });
  {
    const ScopedAssertContext inner([] { return std::string("node 1"); });
    CHECK(assert_context() == "node 1");
  }
  CHECK(assert_context() == "loop");
}

}  // namespace
}  // namespace uraft
