// What every benchmark program reports alike: percentiles over latency samples, and the
// machine a run was taken on, as JSON. One definition here, so that numbers from two
// programs mean the same thing.
#pragma once

#include <string>
#include <vector>

namespace uraft::bench {

// The sample at rank floor(p * (n - 1)) of `samples` in ascending order (0 if empty);
// p in [0, 1]. Reorders `samples`.
double percentile(std::vector<double>& samples, double p);

// The middle sample, or the mean of the two middle ones (0 if empty).
double median(std::vector<double> samples);

struct Latency {
  double p50 = 0;
  double p99 = 0;
  double p999 = 0;
  double max = 0;
};

// The percentiles of `samples` (all zero if empty), in the samples' unit.
Latency summarize(std::vector<double> samples);

// `s` as a JSON string literal, quotes included.
std::string json_string(const std::string& s);

// The "model name" of /proc/cpuinfo's first processor, or "unknown".
std::string cpu_model();

// Now, as 2026-11-25T16:53:15Z.
std::string utc_timestamp();

// The machine's facts as a JSON object: nproc, cpu_model, kernel, kernel_version, arch,
// compiler, optimized, liburing. With an empty `indent` on one line; otherwise one field a
// line, each prefixed by `indent`, and the closing brace by `indent` less two spaces.
std::string machine_json(const std::string& indent = "");

}  // namespace uraft::bench
