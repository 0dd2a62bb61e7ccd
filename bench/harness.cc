#include "bench/harness.h"

#include <fnmatch.h>
#include <sched.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <utility>

#include "bench/report.h"
#include "core/assert.h"

namespace uraft::bench {
namespace {

// Calibration grows the count until one run takes at least this long, then scales it.
constexpr std::chrono::milliseconds kCalibrationProbe{10};
constexpr std::uint64_t kCalibrationStartOps = 64;

std::uint64_t round_up(std::uint64_t n, std::uint64_t granularity) {
  URAFT_ASSERT(granularity > 0);
  if (n == 0) n = 1;
  return (n + granularity - 1) / granularity * granularity;
}

double median_of(std::vector<double> v) {
  URAFT_ASSERT(!v.empty());
  return median(std::move(v));
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string fixed(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

void add_options(CLI::App& app, HarnessOptions& options) {
  app.add_option("--repeat", options.repeat, "Timed runs per case; the median is reported")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  app.add_option("--ops", options.ops,
                 "Operations per timed run (default: calibrate each case to --duration-ms)");
  app.add_option("--duration-ms", options.duration_ms,
                 "Target length of one timed run when --ops is not given")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--json", options.json_path, "Also write the results as JSON to this file");
  app.add_option("--filter", options.filter,
                 "Run only cases whose key matches this shell pattern (e.g. 'nop_*')");
  app.add_option("--pin-cpu", options.pin_cpu, "Pin the process to this CPU (default: no pinning)")
      ->check(CLI::Range(-1, CPU_SETSIZE - 1));
}

void sink(std::uint64_t value) noexcept {
  static volatile std::uint64_t s;
  s = s + value;
}

Harness::Harness(HarnessOptions options) : options_(std::move(options)) {
  if (options_.pin_cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<unsigned>(options_.pin_cpu), &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      std::fprintf(stderr, "core_bench: cannot pin to CPU %d: %s (running unpinned)\n",
                   options_.pin_cpu, std::strerror(errno));
    }
  }
}

std::uint64_t Harness::calibrate(const Case& c) const {
  // Also the warm-up: the first runs fault in rings, frames and allocator pools.
  std::uint64_t ops = round_up(kCalibrationStartOps, c.granularity);
  for (;;) {
    const auto took = c.run(ops);
    if (took >= kCalibrationProbe) {
      const double scale = options_.duration_ms * 1e6 / static_cast<double>(took.count());
      return round_up(static_cast<std::uint64_t>(static_cast<double>(ops) * scale), c.granularity);
    }
    ops = round_up(ops * 4, c.granularity);
  }
}

void Harness::add(Case c) {
  if (!options_.filter.empty() && fnmatch(options_.filter.c_str(), c.key.c_str(), 0) != 0) return;
  cases_.push_back(std::move(c));
}

void Harness::run_all() {
  results_.clear();
  for (const Case& c : cases_) {
    Result r;
    r.key = c.key;
    r.label = c.label;
    r.skipped = c.skipped;
    if (!c.skipped.empty()) {
      std::fprintf(stderr, "  %-24s skipped: %s\n", c.key.c_str(), c.skipped.c_str());
    } else if (options_.ops != 0) {
      r.ops = round_up(options_.ops, c.granularity);
      (void)c.run(round_up(std::max<std::uint64_t>(r.ops / 10, 1), c.granularity));  // Warm-up.
    } else {
      r.ops = calibrate(c);
    }
    results_.push_back(std::move(r));
  }
  for (unsigned round = 0; round < options_.repeat; ++round) {
    std::fprintf(stderr, "round %u/%u\n", round + 1, options_.repeat);
    for (std::size_t i = 0; i < cases_.size(); ++i) {
      Result& r = results_[i];
      if (!r.skipped.empty()) continue;
      const auto took = cases_[i].run(r.ops);
      r.ns_per_op.push_back(static_cast<double>(took.count()) / static_cast<double>(r.ops));
    }
  }
  for (Result& r : results_) {
    if (!r.skipped.empty()) continue;
    r.median = median_of(r.ns_per_op);
    r.min = *std::min_element(r.ns_per_op.begin(), r.ns_per_op.end());
    r.max = *std::max_element(r.ns_per_op.begin(), r.ns_per_op.end());
  }
}

const Result* Harness::find(const std::string& key) const {
  for (const auto& r : results_) {
    if (r.key == key && r.skipped.empty()) return &r;
  }
  return nullptr;
}

void Harness::ratio(std::string key, std::string label, const std::string& numerator,
                    const std::string& denominator, double floor) {
  Ratio q;
  q.key = std::move(key);
  q.label = std::move(label);
  q.floor = floor;
  const Result* n = find(numerator);
  const Result* d = find(denominator);
  if (n != nullptr && d != nullptr) {
    URAFT_ASSERT(n->ns_per_op.size() == d->ns_per_op.size());
    std::vector<double> per_round;
    for (std::size_t i = 0; i < n->ns_per_op.size(); ++i) {
      if (d->ns_per_op[i] > 0) per_round.push_back(n->ns_per_op[i] / d->ns_per_op[i]);
    }
    if (!per_round.empty()) {
      q.value = median_of(per_round);
      q.measured = true;
    }
  }
  ratios_.push_back(std::move(q));
}

void Harness::print_table() const {
  std::size_t label_width = 9;
  for (const auto& r : results_) label_width = std::max(label_width, r.label.size());
  for (const auto& q : ratios_) label_width = std::max(label_width, q.label.size());
  const int w = static_cast<int>(label_width);

  std::printf("\n%-*s  %12s  %10s  %10s  %12s\n", w, "benchmark", "ns/op median", "min", "max",
              "ops/run");
  std::printf("%s\n", std::string(label_width + 52, '-').c_str());
  for (const auto& r : results_) {
    if (!r.skipped.empty()) {
      std::printf("%-*s  %12s  (%s)\n", w, r.label.c_str(), "skipped", r.skipped.c_str());
      continue;
    }
    std::printf("%-*s  %12.1f  %10.1f  %10.1f  %12llu\n", w, r.label.c_str(), r.median, r.min,
                r.max, static_cast<unsigned long long>(r.ops));
  }
  if (!ratios_.empty()) {
    std::printf("\n%-*s  %12s  %10s\n", w, "ratio", "value", "floor");
    std::printf("%s\n", std::string(label_width + 26, '-').c_str());
    for (const auto& q : ratios_) {
      if (!q.measured) {
        std::printf("%-*s  %12s\n", w, q.label.c_str(), "n/a");
        continue;
      }
      const char* verdict = q.floor <= 0 ? "" : (q.value <= q.floor ? "  ok" : "  ABOVE FLOOR");
      std::printf("%-*s  %12.3f  %10s%s\n", w, q.label.c_str(), q.value,
                  q.floor > 0 ? fixed(q.floor, 2).c_str() : "-", verdict);
    }
  }
  std::printf("\nns/op = time of one timed run / its operations; median, min, max over %u rounds.\n"
              "A ratio is the median over rounds of the two rows' quotient in the same round.\n",
              options_.repeat);
}

bool Harness::write_json(const std::string& program) const {
  if (options_.json_path.empty()) return true;
  std::ostringstream o;
  o << "{\n";
  o << "  \"program\": " << json_string(program) << ",\n";
  o << "  \"timestamp_utc\": " << json_string(utc_timestamp()) << ",\n";
  o << "  \"machine\": " << machine_json("    ") << ",\n";
  o << "  \"config\": {\"repeat\": " << options_.repeat << ", \"ops\": " << options_.ops
    << ", \"duration_ms\": " << json_number(options_.duration_ms)
    << ", \"filter\": " << json_string(options_.filter) << ", \"pin_cpu\": " << options_.pin_cpu
    << "},\n";
  o << "  \"results\": [";
  for (std::size_t i = 0; i < results_.size(); ++i) {
    const Result& r = results_[i];
    o << (i == 0 ? "\n" : ",\n") << "    {\"key\": " << json_string(r.key)
      << ", \"label\": " << json_string(r.label);
    if (!r.skipped.empty()) {
      o << ", \"skipped\": " << json_string(r.skipped) << "}";
      continue;
    }
    o << ", \"ops\": " << r.ops << ", \"ns_per_op_median\": " << json_number(r.median)
      << ", \"ns_per_op_min\": " << json_number(r.min)
      << ", \"ns_per_op_max\": " << json_number(r.max) << ", \"ns_per_op_runs\": [";
    for (std::size_t j = 0; j < r.ns_per_op.size(); ++j) {
      o << (j == 0 ? "" : ", ") << json_number(r.ns_per_op[j]);
    }
    o << "]}";
  }
  o << "\n  ],\n";
  o << "  \"ratios\": [";
  for (std::size_t i = 0; i < ratios_.size(); ++i) {
    const Ratio& q = ratios_[i];
    o << (i == 0 ? "\n" : ",\n") << "    {\"key\": " << json_string(q.key)
      << ", \"label\": " << json_string(q.label)
      << ", \"value\": " << (q.measured ? json_number(q.value) : "null")
      << ", \"floor\": " << json_number(q.floor) << ", \"within_floor\": "
      << (q.measured ? (q.value <= q.floor ? "true" : "false") : "null") << "}";
  }
  o << "\n  ]\n}\n";

  std::ofstream out(options_.json_path, std::ios::trunc);
  out << o.str();
  out.close();
  if (!out) {
    std::fprintf(stderr, "core_bench: cannot write %s: %s\n", options_.json_path.c_str(),
                 std::strerror(errno));
    return false;
  }
  return true;
}

}  // namespace uraft::bench
