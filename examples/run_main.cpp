// The plain way to use uraft's core: build an io_uring loop, run one main task to the end.
// The main task runs three children at once with when_all: two timers and a fiber (a
// blocking-style function on its own stack that awaits a timer), then prints what they did.
#include <chrono>
#include <cstdio>
#include <exception>
#include <vector>

#include "core/fiber.h"
#include "core/loop.h"
#include "core/when.h"

using namespace std::chrono_literals;

namespace {

long long elapsed_ms(uraft::TimePoint start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(uraft::Loop::current().now() - start)
      .count();
}

uraft::Task<int> timer(uraft::TimePoint start, uraft::Duration delay, int id) {
  co_await uraft::sleep_for(delay);
  std::printf("timer %d fired after %lld ms\n", id, elapsed_ms(start));
  co_return id;
}

// Runs on a fiber: plain calls, with await() where a coroutine would co_await.
int blocking_style(uraft::TimePoint start) {
  int total = 0;
  for (int step = 1; step <= 3; ++step) {
    total += uraft::await(timer(start, 5ms, 10 * step));
  }
  std::printf("fiber done after %lld ms\n", elapsed_ms(start));
  return total;
}

uraft::Task<int> main_task() {
  const uraft::TimePoint start = uraft::Loop::current().now();
  std::vector<uraft::Task<int>> children;
  children.push_back(timer(start, 20ms, 1));
  children.push_back(timer(start, 10ms, 2));
  children.push_back(uraft::run_fiber([start] { return blocking_style(start); }));
  const std::vector<int> results = co_await uraft::when_all(std::move(children));
  std::printf("when_all: %d %d %d after %lld ms\n", results[0], results[1], results[2],
              elapsed_ms(start));
  co_return results[0] + results[1] + results[2];
}

}  // namespace

int main() {
  try {
    auto loop = uraft::Loop::uring();
    const int sum = loop->run(main_task());
    std::printf("sum %d\n", sum);
    return sum == 1 + 2 + 60 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "run_main: %s\n", e.what());
    return 1;
  }
}
