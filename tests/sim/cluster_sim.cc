// cluster_sim: runs the cluster simulator (tests/sim/cluster.h) on a range of seeds.
//   cluster_sim --seeds A..B [--nodes 3|5] [--faults net,process,disk|all|none]
//               [--duration S] [--clients N] [--json FILE] [--trace]
// Exits non-zero if any seed breaks a checker; for each such seed it prints the violation,
// the events that led to it, and the one-line command that replays it (--trace prints every
// event of the run as it happens).
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "tests/sim/cluster.h"

namespace {

[[noreturn]] void usage(const char* argv0, const std::string& problem) {
  std::fprintf(stderr,
               "%s\nusage: %s --seeds A..B|N [--nodes 3|5] [--faults net,process,disk|all|none] "
               "[--duration S] [--clients N] [--json FILE] [--trace]\n",
               problem.c_str(), argv0);
  std::exit(2);
}

bool parse_u64(const std::string& s, std::uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  out = std::stoull(s);
  return true;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (c == '\n')
      out += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20)
      out += ' ';
    else
      out += c;
  }
  return out;
}

struct Totals {
  std::uint64_t ops = 0, crashes = 0, refusals = 0, gave_up = 0;
  void add(const Totals& t) {
    ops += t.ops;
    crashes += t.crashes;
    refusals += t.refusals;
    gave_up += t.gave_up;
  }
};

// Runs one seed; prints its report if it failed. True if it passed.
bool run_seed(const uraft::sim::SimOptions& o, Totals& totals) {
  const uraft::sim::SimResult r = uraft::sim::run_simulation(o);
  const auto seed = static_cast<unsigned long long>(o.seed);
  totals.ops += r.ops;
  totals.crashes += r.crashes;
  totals.refusals += r.refusals;
  totals.gave_up += r.lin_gave_up ? 1 : 0;
  if (o.trace_all) {
    auto n = [](std::uint64_t v) { return std::to_string(v); };
    const std::string line = "seed " + n(o.seed) + ": " + n(r.ops) + " ops (" + n(r.ops_ok) +
                             " answered, " + n(r.ops_indeterminate) + " unknown), " + n(r.crashes) +
                             " crashes, " + n(r.restarts) + " restarts, " + n(r.refusals) +
                             " refusals, " + n(r.node_failures) + " node failures, " +
                             n(r.writes_lost) + " disk operations lost, " + n(r.leaders) +
                             " leaders, " + n(r.committed) + " entries committed on the wire, " +
                             n(r.frames_refused) + " corrupt frames refused, " +
                             n(r.lease_reads) + " lease reads, " + n(r.lin_states) +
                             " search states";
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  if (r.ok()) return true;
  std::printf("FAIL seed %llu: %s\n", seed, r.violations.front().c_str());
  for (std::size_t v = 1; v < r.violations.size() && v < 5; ++v)
    std::printf("  also: %s\n", r.violations[v].c_str());
  std::printf("  the last %zu events:\n", r.trace.size());
  for (const std::string& e : r.trace) std::printf("    %s\n", e.c_str());
  std::printf("  replay: %s\n", uraft::sim::replay_command(o).c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  using uraft::sim::SimOptions;
  SimOptions base;
  std::uint64_t first = 1, last = 1;
  std::string json;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0], arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--seeds") {
      const std::string v = value();
      const std::size_t dots = v.find("..");
      const bool ok = dots == std::string::npos ? parse_u64(v, first) && ((last = first), true)
                                                : parse_u64(v.substr(0, dots), first) &&
                                                      parse_u64(v.substr(dots + 2), last);
      if (!ok || first > last)
        usage(argv[0], "--seeds: expected N or A..B with A <= B, got '" + v + "'");
    } else if (arg == "--nodes") {
      std::uint64_t n = 0;
      if (!parse_u64(value(), n) || n < 1 || n > 9) usage(argv[0], "--nodes: 1 to 9");
      base.nodes = n;
    } else if (arg == "--faults") {
      const std::string v = value();
      base.net_faults = base.process_faults = base.disk_faults = false;
      std::size_t start = 0;
      while (start <= v.size()) {
        const std::size_t comma = std::min(v.find(',', start), v.size());
        const std::string f = v.substr(start, comma - start);
        if (f == "all")
          base.net_faults = base.process_faults = base.disk_faults = true;
        else if (f == "net")
          base.net_faults = true;
        else if (f == "process")
          base.process_faults = true;
        else if (f == "disk")
          base.disk_faults = true;
        else if (f != "none")
          usage(argv[0], "--faults: unknown fault class '" + f + "'");
        start = comma + 1;
      }
    } else if (arg == "--duration") {
      std::uint64_t s = 0;
      if (!parse_u64(value(), s) || s < 1)
        usage(argv[0], "--duration: seconds of virtual time, at least 1");
      base.duration = std::chrono::seconds(s);
    } else if (arg == "--clients") {
      std::uint64_t c = 0;
      if (!parse_u64(value(), c) || c < 1 || c > 64) usage(argv[0], "--clients: 1 to 64");
      base.clients = c;
    } else if (arg == "--json") {
      json = value();
    } else if (arg == "--trace") {
      base.trace_all = true;
    } else {
      usage(argv[0], "unknown argument '" + arg + "'");
    }
  }

  spdlog::set_level(std::getenv("SIM_LOG")
                        ? spdlog::level::info
                        : spdlog::level::off);  // The nodes' logs; the trace has what matters.
  const auto started = std::chrono::steady_clock::now();
  std::uint64_t passed = 0, failed = 0;
  Totals totals;
  std::vector<std::string> failing;
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    SimOptions o = base;
    o.seed = seed;
    // Each seed in a child process: a node's failed assertion (it aborts) loses that seed
    // alone, and is reported with its replay command like any other violation.
    int fds[2];
    if (::pipe(fds) != 0) {
      std::perror("pipe");
      return 2;
    }
    std::fflush(stdout);
    const pid_t child = ::fork();
    if (child < 0) {
      std::perror("fork");
      return 2;
    }
    if (child == 0) {
      ::close(fds[0]);
      Totals mine;
      const bool ok = run_seed(o, mine);
      std::fflush(stdout);
      std::fflush(stderr);
      (void)!::write(fds[1], &mine, sizeof mine);
      std::_Exit(ok ? 0 : 1);
    }
    ::close(fds[1]);
    Totals theirs;
    const bool reported =
        ::read(fds[0], &theirs, sizeof theirs) == static_cast<ssize_t>(sizeof theirs);
    ::close(fds[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (reported) totals.add(theirs);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      ++passed;
      continue;
    }
    ++failed;
    failing.push_back(std::to_string(seed));
    if (WIFSIGNALED(status)) {
      std::printf(
          "FAIL seed %llu: the process died of signal %d (a failed assertion aborts; its message "
          "is above)\n"
          "  replay: %s\n",
          static_cast<unsigned long long>(seed), WTERMSIG(status),
          uraft::sim::replay_command(o).c_str());
      std::fflush(stdout);
    }
  }
  const std::uint64_t ops = totals.ops, crashes = totals.crashes, refusals = totals.refusals,
                      gave_up = totals.gave_up;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "cluster_sim: %llu seeds, %llu passed, %llu failed; %llu client operations, %llu crashes, "
      "%llu WAL refusals; %.1f s (%.3f s per seed)%s\n",
      static_cast<unsigned long long>(passed + failed), static_cast<unsigned long long>(passed),
      static_cast<unsigned long long>(failed), static_cast<unsigned long long>(ops),
      static_cast<unsigned long long>(crashes), static_cast<unsigned long long>(refusals), seconds,
      seconds / static_cast<double>(passed + failed),
      gave_up ? (", " + std::to_string(gave_up) + " histories too large to check fully").c_str()
              : "");
  if (!json.empty()) {
    std::ofstream out(json);
    out << "{\"seeds\": [" << first << ", " << last << "], \"nodes\": " << base.nodes
        << ", \"passed\": " << passed << ", \"failed\": " << failed << ", \"failing\": [";
    for (std::size_t i = 0; i < failing.size(); ++i) out << (i ? ", " : "") << failing[i];
    out << "], \"ops\": " << ops << ", \"crashes\": " << crashes << ", \"refusals\": " << refusals
        << ", \"seconds\": " << seconds << ", \"replay\": \""
        << json_escape(uraft::sim::replay_command(base)) << "\"}\n";
  }
  return failed == 0 ? 0 : 1;
}
