// The Raft lab port's common ground: the tester's command values (Go's interface{}: the
// tests submit ints and strings), their encoding as Raft commands, the tester's randomness
// (Go's math/rand, drawn here from the loop's rng so a run is a function of its seed), and
// what a failing test throws (Go's t.Fatalf).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/task.h"

namespace uraft::lab {

using namespace std::chrono_literals;

// Go's RaftElectionTimeout: the unit of every test's sleeps.
inline constexpr Duration kElectionTimeout = 1000ms;

// A command value: Go's nil, int or string.
using Value = std::variant<std::monostate, std::int64_t, std::string>;

// A command as Raft carries it: a tag byte, then 8 little-endian bytes or the string.
std::string encode_value(const Value& v);
Value decode_value(std::string_view bytes);
// Go's %v.
std::string format_value(const Value& v);
std::string format_values(const std::vector<std::int64_t>& values);  // [1 2 3]

// Go's math/rand, on the loop's rng: rand.Int() (63 bits, non-negative), rand.Int31().
std::int64_t rand_int();
std::int64_t rand_int31();
// The tester's randstring(n): base64url of 2n random bytes, cut to n characters.
std::string randstring(std::size_t n);

// t.Fatalf: the test stops here; the runner reports the message.
struct TestFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Builds a message from pieces, as fmt.Sprintf would print them.
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

class LabConfig;

// Go's *testing.T for one test run: owns the test's config, so the runner can clean it up
// however the body ends.
struct TestContext {
  std::string name;
  std::uint64_t seed = 0;
  bool verbose = false;
  bool sim_storage = false;  // Persist on SimStorage (crashes lose unsynced writes).
  std::uint64_t writes_lost = 0;  // SimStorage: unsynced writes the test's crashes dropped.
  std::unique_ptr<LabConfig> cfg;
  std::vector<std::string> warnings;
  // Filled by cfg.end(): the lab's "Passed" numbers.
  bool ended = false;
  double seconds = 0;
  int peers = 0;
  std::uint64_t rpcs = 0;
  std::uint64_t bytes = 0;
  std::uint64_t cmds = 0;

  TestContext();
  ~TestContext();
  TestContext(const TestContext&) = delete;
  TestContext& operator=(const TestContext&) = delete;

  // make_config(t, n, unreliable, snapshot): starts n servers and connects them.
  Task<LabConfig*> make_config(int n, bool unreliable, bool snapshot);
};

using TestFn = Task<void> (*)(TestContext& t);

struct LabTest {
  const char* name;
  TestFn fn;
};

// The 28 tests of the 2023 suite, in file order.
const std::vector<LabTest>& all_tests();

}  // namespace uraft::lab
