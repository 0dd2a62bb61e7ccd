#include "bench/report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <utility>

#ifndef URAFT_BENCH_LIBURING_VERSION
#define URAFT_BENCH_LIBURING_VERSION "unknown"
#endif

namespace uraft::bench {

double percentile(std::vector<double>& samples, double p) {
  if (samples.empty()) return 0;
  const auto i = std::min(samples.size() - 1,
                          static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1)));
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(i),
                   samples.end());
  return samples[i];
}

double median(std::vector<double> samples) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const std::size_t mid = samples.size() / 2;
  return samples.size() % 2 == 1 ? samples[mid] : (samples[mid - 1] + samples[mid]) / 2;
}

Latency summarize(std::vector<double> samples) {
  Latency l;
  if (samples.empty()) return l;
  l.p50 = percentile(samples, 0.50);
  l.p99 = percentile(samples, 0.99);
  l.p999 = percentile(samples, 0.999);
  l.max = *std::max_element(samples.begin(), samples.end());
  return l;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      const auto start = line.find_first_not_of(' ', colon + 1);
      if (start != std::string::npos) return line.substr(start);
    }
  }
  return "unknown";
}

std::string utc_timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string machine_json(const std::string& indent) {
  utsname u{};
  uname(&u);
#if defined(__clang__)
  const std::string compiler = __VERSION__;  // Says "clang" itself.
#elif defined(__GNUC__)
  const std::string compiler = std::string("g++ ") + __VERSION__;
#else
  const std::string compiler = __VERSION__;
#endif
#ifdef __OPTIMIZE__
  const bool optimized = true;
#else
  const bool optimized = false;
#endif
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"nproc", std::to_string(sysconf(_SC_NPROCESSORS_ONLN))},
      {"cpu_model", json_string(cpu_model())},
      {"kernel", json_string(std::string(u.sysname) + " " + u.release)},
      {"kernel_version", json_string(u.version)},
      {"arch", json_string(u.machine)},
      {"compiler", json_string(compiler)},
      {"optimized", optimized ? "true" : "false"},
      {"liburing", json_string(URAFT_BENCH_LIBURING_VERSION)},
  };
  std::string out = "{";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    if (!indent.empty()) {
      out += '\n';
      out += indent;
    } else if (i > 0) {
      out += ' ';
    }
    out += '"';
    out += fields[i].first;
    out += "\": ";
    out += fields[i].second;
  }
  if (!indent.empty()) {
    out += '\n';
    out.append(indent, 0, indent.size() >= 2 ? indent.size() - 2 : 0);
  }
  return out + "}";
}

}  // namespace uraft::bench
