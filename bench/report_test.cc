// bench/report.h: the percentile rank every bench program uses, medians, the latency
// summary, JSON string escaping and the shape of the machine object and timestamp.
#include "bench/report.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace uraft::bench {
namespace {

std::vector<double> one_to(int n) {
  std::vector<double> v;
  for (int i = n; i >= 1; --i) v.push_back(i);  // Descending: percentile must not need order.
  return v;
}

TEST_CASE("percentile is the sample at rank floor(p * (n - 1)), 0 when empty") {
  // Goal: one definition of p50/p99 across programs, on unsorted input.
  std::vector<double> v = one_to(101);
  CHECK(percentile(v, 0.0) == 1);
  CHECK(percentile(v, 0.5) == 51);
  CHECK(percentile(v, 0.99) == 100);
  CHECK(percentile(v, 1.0) == 101);
  std::vector<double> ten = one_to(10);
  CHECK(percentile(ten, 0.5) == 5);  // floor(4.5) = 4: the 5th sample.
  std::vector<double> empty;
  CHECK(percentile(empty, 0.5) == 0);
}

TEST_CASE("median averages the two middle samples of an even count") {
  // Goal: medians over rounds are the usual median.
  CHECK(median({3, 1, 2}) == 2);
  CHECK(median({4, 1, 3, 2}) == 2.5);
  CHECK(median({}) == 0);
}

TEST_CASE("summarize reports p50, p99, p99.9 and max") {
  // Goal: the latency summary matches percentile() and the largest sample.
  const Latency l = summarize(one_to(1001));
  CHECK(l.p50 == 501);
  CHECK(l.p99 == 991);
  CHECK(l.p999 == 1000);
  CHECK(l.max == 1001);
  const Latency none = summarize({});
  CHECK(none.p50 == 0);
  CHECK(none.max == 0);
}

TEST_CASE("json_string escapes quotes, backslashes and control characters") {
  // Goal: a CPU model or label with odd characters still gives valid JSON.
  CHECK(json_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(json_string("x\ny\tz") == "\"x\\ny\\tz\"");
  CHECK(json_string(std::string("\x01", 1)) == "\"\\u0001\"");
}

TEST_CASE("machine_json is one object, on one line or one field a line") {
  // Goal: every program writes the same machine facts; the indent form nests in a report.
  const std::string line = machine_json();
  CHECK(line.front() == '{');
  CHECK(line.back() == '}');
  CHECK(line.find('\n') == std::string::npos);
  for (const char* key : {"\"nproc\": ", "\"cpu_model\": ", "\"kernel\": ", "\"arch\": ",
                          "\"compiler\": ", "\"optimized\": ", "\"liburing\": "}) {
    CHECK_MESSAGE(line.find(key) != std::string::npos, key);
  }
  const std::string nested = machine_json("    ");
  CHECK(nested.rfind("{\n    \"nproc\": ", 0) == 0);
  CHECK(nested.size() >= 4);
  CHECK(nested.substr(nested.size() - 4) == "\n  }");
}

TEST_CASE("utc_timestamp is ISO 8601 in UTC") {
  // Goal: reports carry a sortable UTC date.
  const std::string t = utc_timestamp();
  REQUIRE(t.size() == 20);
  CHECK(t[4] == '-');
  CHECK(t[10] == 'T');
  CHECK(t[19] == 'Z');
}

}  // namespace
}  // namespace uraft::bench
