// raft_lab: runs the Raft lab tests on the simulated loop, each test once per seed, and prints
// per test and seed: pass or fail, virtual and wall time, the lab's numbers (peers, RPCs,
// bytes, agreements) and the loop's trace hash. A failure prints the command that replays it
// (same seed, same trace). Exit status 1 if any run failed.
//
//   raft_lab [--seeds 1..20 | --seeds 7] [--filter 2B]... [--test TestBackup2B] [-v] [--list]
//            [--wall-limit SECONDS] [--storage mem|sim]
// --storage sim persists on SimStorage: crashes lose a random part of the unsynced writes.
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/assert.h"
#include "core/loop.h"
#include "raft/invariants.h"
#include "tests/raft/lab/lab.h"
#include "tests/raft/lab/lab_config.h"

namespace uraft::lab {
namespace {

struct Options {
  std::uint64_t seed_first = 1;
  std::uint64_t seed_last = 1;
  std::vector<std::string> filters;  // Substrings; a test runs if it matches any (or none given).
  std::string exact;                 // --test: this test only.
  bool verbose = false;
  bool list = false;
  bool sim_storage = false;  // --storage sim: SimStorage instead of MemStorage.
  double wall_limit_s = 120;  // Per run: a livelock (no virtual time passes) cannot hang us.
  std::string argv0;
};

[[noreturn]] void usage(const char* argv0, const char* problem) {
  std::fprintf(stderr,
               "%s\nusage: %s [--seeds A..B | --seeds N] [--filter SUBSTRING]... [--test NAME]"
               " [-v] [--list] [--wall-limit SECONDS] [--storage mem|sim]\n",
               problem, argv0);
  std::exit(2);
}

bool parse_u64(const std::string& s, std::uint64_t& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtoull(s.c_str(), &end, 10);
  return end != nullptr && *end == '\0';
}

Options parse(int argc, char** argv) {
  Options o;
  o.argv0 = argv[0];
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0], ("missing value for " + arg).c_str());
      return argv[++i];
    };
    if (arg == "--seeds" || arg == "--seed") {
      const std::string v = value();
      const auto dots = v.find("..");
      if (dots == std::string::npos) {
        if (!parse_u64(v, o.seed_first)) usage(argv[0], "bad --seeds");
        o.seed_last = o.seed_first;
      } else if (!parse_u64(v.substr(0, dots), o.seed_first) ||
                 !parse_u64(v.substr(dots + 2), o.seed_last) || o.seed_last < o.seed_first) {
        usage(argv[0], "bad --seeds");
      }
    } else if (arg == "--filter") {
      o.filters.push_back(value());
    } else if (arg == "--storage") {
      const std::string v = value();
      if (v != "sim" && v != "mem") usage(argv[0], "bad --storage (sim or mem)");
      o.sim_storage = v == "sim";
    } else if (arg == "--test") {
      o.exact = value();
    } else if (arg == "--wall-limit") {
      std::uint64_t v = 0;
      if (!parse_u64(value(), v) || v == 0) usage(argv[0], "bad --wall-limit");
      o.wall_limit_s = static_cast<double>(v);
    } else if (arg == "-v" || arg == "--verbose") {
      o.verbose = true;
    } else if (arg == "--list") {
      o.list = true;
    } else {
      usage(argv[0], ("unknown argument " + arg).c_str());
    }
  }
  return o;
}

bool selected(const Options& o, const std::string& name) {
  if (!o.exact.empty()) return name == o.exact;
  if (o.filters.empty()) return true;
  for (const auto& f : o.filters) {
    if (name.find(f) != std::string::npos) return true;
  }
  return false;
}

// Aborts the process, naming the run and its replay command, if a run outlives its wall-clock
// limit: a task spinning without letting virtual time pass starves every timer, the tester's
// own included, so only another thread can notice.
class Watchdog {
 public:
  Watchdog(double limit_s, std::string what)
      : what_(std::move(what)), thread_(&Watchdog::watch, this, limit_s) {}
  ~Watchdog() {
    {
      const std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void watch(double limit_s) {
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, std::chrono::duration<double>(limit_s), [this] { return done_; })) {
      return;
    }
    std::fflush(stdout);
    std::fprintf(stderr, "TIMEOUT after %.0f s of wall time: %s\n", limit_s, what_.c_str());
    std::abort();
  }

  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The test body, then cleanup however the body ended (Go's defer cfg.cleanup()).
Task<void> run_body(TestFn fn, TestContext* t) {
  std::exception_ptr error;
  try {
    co_await fn(*t);
  } catch (...) {
    error = std::current_exception();
  }
  if (t->cfg) {
    try {
      co_await t->cfg->cleanup();
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  if (!t->ended) throw TestFailure("test body returned without cfg.end()");
}

struct Result {
  bool passed = false;
  std::string message;
  double virtual_s = 0;
  double wall_s = 0;
  std::uint64_t trace = 0;
};

Result run_one(const LabTest& test, std::uint64_t seed, const Options& o, TestContext& t) {
  Result r;
  t.name = test.name;
  t.seed = seed;
  t.verbose = o.verbose;
  t.sim_storage = o.sim_storage;
  const auto wall0 = std::chrono::steady_clock::now();
  auto loop = Loop::simulated({.seed = seed});
  // A failed URAFT_ASSERT aborts the process: it names the run and how to replay it.
  const ScopedAssertContext context([&test, seed, &o, &loop] {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s seed %" PRIu64 ", virtual time %.3f s; replay: %s --test %s --seeds %" PRIu64 "%s",
                  test.name, seed,
                  std::chrono::duration<double>(loop->now().time_since_epoch()).count(),
                  o.argv0.c_str(), test.name, seed, o.sim_storage ? " --storage sim" : "");
    return std::string(buf);
  });
  const Watchdog watchdog(o.wall_limit_s, std::string(test.name) + " seed " + std::to_string(seed) +
                                              "; replay: " + o.argv0 + " --test " + test.name +
                                              " --seeds " + std::to_string(seed) +
                                              (o.sim_storage ? " --storage sim" : ""));
  try {
    loop->run(run_body(test.fn, &t));
    r.passed = true;
  } catch (const TestFailure& e) {
    r.message = e.what();
  } catch (const InvariantViolation& e) {
    r.message = e.what();
  } catch (const std::exception& e) {
    r.message = std::string("exception: ") + e.what();
  }
  r.virtual_s = std::chrono::duration<double>(loop->now().time_since_epoch()).count();
  r.trace = loop->trace_hash();
  t.cfg.reset();
  loop.reset();
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return r;
}

int main_impl(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::vector<const LabTest*> tests;
  for (const LabTest& test : all_tests()) {
    if (selected(o, test.name)) tests.push_back(&test);
  }
  if (o.list) {
    for (const LabTest* test : tests) std::printf("%s\n", test->name);
    return 0;
  }
  if (tests.empty()) usage(argv[0], "no test matches");

  struct Tally {
    int passed = 0;
    std::vector<std::uint64_t> failed_seeds;
    double wall_s = 0;
    double virtual_s = 0;
  };
  std::map<std::string, Tally> by_test;
  std::vector<std::pair<std::uint64_t, double>> wall_by_seed;
  int failures = 0;
  std::uint64_t writes_lost = 0;
  for (std::uint64_t seed = o.seed_first; seed <= o.seed_last; ++seed) {
    double seed_wall = 0;
    for (const LabTest* test : tests) {
      TestContext t;
      const Result r = run_one(*test, seed, o, t);
      seed_wall += r.wall_s;
      writes_lost += t.writes_lost;
      Tally& tally = by_test[test->name];
      tally.wall_s += r.wall_s;
      tally.virtual_s += r.virtual_s;
      for (const std::string& w : t.warnings) {
        std::printf("%s seed %" PRIu64 ": %s\n", test->name, seed, w.c_str());
      }
      if (r.passed) {
        ++tally.passed;
        std::printf("PASS %-32s seed %-4" PRIu64 " virtual %6.1fs wall %6.3fs  %4.1f %d %5" PRIu64
                    " %8" PRIu64 " %4" PRIu64 "  trace %016" PRIx64 "\n",
                    test->name, seed, r.virtual_s, r.wall_s, t.seconds, t.peers, t.rpcs, t.bytes,
                    t.cmds, r.trace);
      } else {
        ++failures;
        tally.failed_seeds.push_back(seed);
        std::printf("FAIL %-32s seed %-4" PRIu64 " virtual %6.1fs wall %6.3fs  trace %016" PRIx64
                    "\n  %s\n  replay: %s --test %s --seeds %" PRIu64 "%s\n",
                    test->name, seed, r.virtual_s, r.wall_s, r.trace, r.message.c_str(), argv[0],
                    test->name, seed, o.sim_storage ? " --storage sim" : "");
      }
      std::fflush(stdout);
    }
    wall_by_seed.emplace_back(seed, seed_wall);
  }

  std::printf("\n== summary: %zu tests x %" PRIu64 " seeds (%" PRIu64 "..%" PRIu64 ")\n",
              tests.size(), o.seed_last - o.seed_first + 1, o.seed_first, o.seed_last);
  for (const LabTest* test : tests) {
    const Tally& tally = by_test[test->name];
    const int runs = tally.passed + static_cast<int>(tally.failed_seeds.size());
    std::printf("%-32s %3d/%-3d passed  wall %7.2fs  virtual %8.1fs", test->name, tally.passed,
                runs, tally.wall_s, tally.virtual_s);
    if (!tally.failed_seeds.empty()) {
      std::printf("  failed seeds:");
      for (const std::uint64_t s : tally.failed_seeds) std::printf(" %" PRIu64, s);
    }
    std::printf("\n");
  }
  double total = 0;
  for (const auto& [seed, wall] : wall_by_seed) total += wall;
  std::printf("suite wall time per seed: mean %.2fs",
              total / static_cast<double>(wall_by_seed.size()));
  if (wall_by_seed.size() <= 32) {
    std::printf(" (");
    for (std::size_t i = 0; i < wall_by_seed.size(); ++i) {
      std::printf("%s%" PRIu64 ":%.2fs", i ? " " : "", wall_by_seed[i].first,
                  wall_by_seed[i].second);
    }
    std::printf(")");
  }
  if (o.sim_storage) {
    std::printf("\nstorage: SimStorage; unsynced writes lost at crashes: %" PRIu64, writes_lost);
  }
  std::printf("\n%d passed, %d failed\n",
              static_cast<int>(tests.size() * wall_by_seed.size()) - failures, failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace uraft::lab

int main(int argc, char** argv) { return uraft::lab::main_impl(argc, argv); }
