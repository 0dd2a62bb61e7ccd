// The bench harness: runs named cases a few times each, reports the median ns/op of the
// repeats as an aligned table and, on request, as JSON with the machine's facts. Every case
// times itself (set-up such as creating a ring stays outside the timed region) and says how
// many operations it ran. The machines we run on are small and noisy: compare rows of one
// run with each other, never with a run from another day.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace uraft::bench {

struct HarnessOptions {
  unsigned repeat = 5;             // Timed runs per case; the median is reported.
  std::uint64_t ops = 0;           // Operations per timed run; 0: calibrate to duration_ms.
  double duration_ms = 200;        // Target length of one timed run when calibrating.
  std::string json_path;           // Where to write the JSON report; empty: none.
  std::string filter;              // Run only cases whose key matches this glob.
  int pin_cpu = -1;                // Pin the process to this CPU (-1: leave it to the kernel).
};

// Adds --repeat, --ops, --duration-ms, --json, --filter, --pin-cpu to `app`.
void add_options(CLI::App& app, HarnessOptions& options);

struct Case {
  std::string key;                 // snake_case id, used in JSON and by --filter.
  std::string label;               // Table row.
  std::uint64_t granularity = 1;   // Operation counts are rounded up to a multiple of this.
  // Runs exactly `ops` operations and returns the time they took.
  std::function<std::chrono::nanoseconds(std::uint64_t ops)> run;
  std::string skipped;             // Non-empty: not run, and why.
};

struct Result {
  std::string key;
  std::string label;
  std::uint64_t ops = 0;                  // Operations per timed run.
  std::vector<double> ns_per_op;          // One per round, in run order.
  double median = 0;
  double min = 0;
  double max = 0;
  std::string skipped;
};

// Two results compared, e.g. uraft over raw liburing: the median over rounds of the quotient
// of their runs in the same round (runs adjacent in time share the machine's mood).
struct Ratio {
  std::string key;
  std::string label;
  double value = 0;
  double floor = 0;                       // The value must stay at or below this (0: none).
  bool measured = false;
};

class Harness {
 public:
  explicit Harness(HarnessOptions options);

  // Queues `c` unless the filter excludes it.
  void add(Case c);
  bool empty() const noexcept { return cases_.empty(); }
  // Calibrates (or warms up) every case, then runs `repeat` rounds; each round runs every case
  // once, in the order added, so that load drifting over time hits all of them alike.
  void run_all();
  // numerator / denominator, per round, then the median; only if both ran.
  void ratio(std::string key, std::string label, const std::string& numerator,
             const std::string& denominator, double floor);

  void print_table() const;
  // Returns false (after printing why) if the file cannot be written.
  [[nodiscard]] bool write_json(const std::string& program) const;

  const Result* find(const std::string& key) const;

 private:
  std::uint64_t calibrate(const Case& c) const;

  HarnessOptions options_;
  std::vector<Case> cases_;
  std::vector<Result> results_;           // Parallel to cases_.
  std::vector<Ratio> ratios_;
};

// Keeps a value alive in the eyes of the optimizer.
void sink(std::uint64_t value) noexcept;

}  // namespace uraft::bench
