// Loop time: a monotonic clock in nanoseconds. On the io_uring backend it is CLOCK_MONOTONIC;
// on the simulated backend it is virtual and only moves when the loop has nothing to run.
#pragma once

#include <chrono>

namespace uraft {

struct LoopClock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<LoopClock>;
  static constexpr bool is_steady = true;
};

using Duration = LoopClock::duration;
using TimePoint = LoopClock::time_point;

using namespace std::chrono_literals;

}  // namespace uraft
