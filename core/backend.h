// The loop's source of time and completions. UringBackend waits on io_uring; SimBackend
// has no kernel: its time is virtual and jumps to the next deadline when nothing can run.
#pragma once

#include <optional>

#include "core/clock.h"

namespace uraft {

class UringBackend;

class Backend {
 public:
  virtual ~Backend() = default;

  virtual TimePoint now() const noexcept = 0;

  // Submits pending work and dispatches completions. With `block`, waits until at least one
  // completion arrives or `deadline` passes (forever without one); without, never waits.
  virtual void poll(std::optional<TimePoint> deadline, bool block) = 0;

  // Operations submitted whose completion has not been dispatched yet.
  virtual unsigned inflight() const noexcept = 0;

  // Non-null when kernel I/O is available.
  virtual UringBackend* uring() noexcept { return nullptr; }
};

// Virtual time for the simulator. Time moves only in poll(): to the deadline, at once.
class SimBackend final : public Backend {
 public:
  explicit SimBackend(TimePoint start = TimePoint{}) : now_(start) {}

  TimePoint now() const noexcept override { return now_; }
  void poll(std::optional<TimePoint> deadline, bool block) override {
    if (block && deadline && *deadline > now_) now_ = *deadline;
  }
  unsigned inflight() const noexcept override { return 0; }

 private:
  TimePoint now_;
};

}  // namespace uraft
