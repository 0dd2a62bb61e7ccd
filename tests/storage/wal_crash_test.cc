// The real-process crash test: a child process appends entries to a WalStorage (many in
// flight, so group commit is exercised), snapshots now and then, and reports every
// acknowledged write to the parent through a pipe; the parent SIGKILLs it at a random
// moment, then reopens the directory and checks that every acknowledged write is there and
// intact and that nothing there was never written. URAFT_CRASH_CYCLES sets the number of
// kill cycles (default 50).
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/loop.h"
#include "core/scope.h"
#include "core/semaphore.h"
#include "raft/wal_storage.h"
#include "tests/storage/storage_fixtures.h"

namespace uraft {
namespace {

constexpr int kDefaultCycles = 50;
constexpr std::size_t kInflightMax = 32;
constexpr std::uint64_t kSnapshotEvery = 400;

WalOptions options() {
  WalOptions o;
  o.segment_bytes = 256 * 1024;
  o.group_bytes_max = 64 * 1024;
  o.warn = [](std::string_view) {};
  return o;
}

std::string command_for(std::uint64_t index, std::uint64_t generation) {
  return "index " + std::to_string(index) + " generation " + std::to_string(generation) + " " +
         std::string(64 + index % 64, static_cast<char>('a' + index % 26));
}

void report(int fd, char kind, std::uint64_t value) {
  const std::string line = std::string(1, kind) + " " + std::to_string(value) + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(4);
}

struct Child {
  WalStorage* wal;
  int fd;
  std::uint64_t generation;
  Semaphore inflight{kInflightMax};
};

Task<void> child_append(Child* c, std::uint64_t index) {
  std::vector<LogEntry> entries;
  entries.push_back(LogEntry{Term(c->generation), command_for(index, c->generation)});
  co_await c->wal->append(LogIndex(index), std::move(entries));
  report(c->fd, 'A', index);
  c->inflight.release();
}

Task<void> child_main(std::string dir, int fd, std::uint64_t generation) {
  auto wal = co_await WalStorage::open(dir, options());
  const RecoveredState state = co_await wal->load();
  const HardState hard{Term(generation), kNoNode};
  co_await wal->save_hard_state(hard);
  report(fd, 'H', generation);
  Child c{wal.get(), fd, generation};
  const std::uint64_t base = state.snapshot ? state.snapshot->last_included_index.value : 0;
  const std::uint64_t recovered_last = base + state.entries.size();
  std::uint64_t next = recovered_last + 1;
  Scope scope;
  for (;;) {
    co_await c.inflight.acquire();
    scope.spawn(child_append(&c, next));
    ++next;
    if (next % kSnapshotEvery == 0) {
      // A snapshot through an entry this child wrote (so its term is this generation). It
      // is ordered after the appends already spawned, once they have been issued.
      const std::uint64_t index = next - kInflightMax - 1;
      if (index > recovered_last) {
        co_await yield();
        SnapshotRecord s{LogIndex(index), Term(generation), "snapshot through " + std::to_string(index)};
        co_await wal->save_snapshot(std::move(s), SnapshotLogAction::kKeepSuffix);
        report(fd, 'S', index);
      }
    }
  }
}

// What the parent learnt from the children's reports.
struct Acked {
  std::map<std::uint64_t, std::uint64_t> entries;  // index -> generation
  std::uint64_t term = 0;
  std::uint64_t snapshot = 0;
  std::uint64_t count = 0;
};

void parse_reports(std::string& buffer, std::uint64_t generation, Acked& acked) {
  std::size_t nl;
  while ((nl = buffer.find('\n')) != std::string::npos) {
    const std::string line = buffer.substr(0, nl);
    buffer.erase(0, nl + 1);
    const std::uint64_t value = std::strtoull(line.c_str() + 2, nullptr, 10);
    if (line[0] == 'A') {
      acked.entries[value] = generation;
      ++acked.count;
    } else if (line[0] == 'H') {
      acked.term = std::max(acked.term, value);
    } else if (line[0] == 'S') {
      acked.snapshot = std::max(acked.snapshot, value);
    }
  }
}

Task<void> verify(std::string dir, const Acked* acked, std::uint64_t generation, std::uint64_t* last) {
  auto wal = co_await WalStorage::open(dir, options());
  const RecoveredState s = co_await wal->load();
  co_await wal->close();
  CHECK(s.hard_state.current_term.value >= acked->term);
  const std::uint64_t base = s.snapshot ? s.snapshot->last_included_index.value : 0;
  CHECK(base >= acked->snapshot);
  if (s.snapshot) CHECK(s.snapshot->data == "snapshot through " + std::to_string(base));
  // Every acknowledged entry is there, intact (or inside the snapshot).
  int missing = 0;
  for (const auto& [index, gen] : acked->entries) {
    if (index <= base) continue;
    const std::size_t pos = index - base - 1;
    if (pos >= s.entries.size() || s.entries[pos].command != command_for(index, gen) ||
        s.entries[pos].term != Term(gen)) {
      ++missing;
    }
  }
  CHECK(missing == 0);
  // Nothing there that was never written: each entry is one some child wrote at its index.
  int foreign = 0;
  for (std::size_t pos = 0; pos < s.entries.size(); ++pos) {
    const std::uint64_t index = base + pos + 1;
    const std::uint64_t gen = s.entries[pos].term.value;
    if (gen == 0 || gen > generation || s.entries[pos].command != command_for(index, gen)) ++foreign;
  }
  CHECK(foreign == 0);
  *last = base + s.entries.size();
}

TEST_CASE("wal crash: SIGKILL at random moments never loses an acknowledged write") {
  // Goal: durability of acknowledged writes across real process crashes, and recovery of
  // whatever a kill left half-written.
  int cycles = kDefaultCycles;
  if (const char* env = std::getenv("URAFT_CRASH_CYCLES")) cycles = std::atoi(env);
  test::TempDir dir;
  Rng rng(0x5eed);
  Acked acked;
  std::uint64_t last = 0;
  for (int cycle = 1; cycle <= cycles; ++cycle) {
    CAPTURE(cycle);
    const std::uint64_t generation = static_cast<std::uint64_t>(cycle);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      try {
        auto loop = Loop::uring();
        loop->run(child_main(dir.path(), fds[1], generation));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "crash test child: %s\n", e.what());
        ::_exit(3);
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    // Read reports for a random while, then kill the child mid-flight.
    const int run_ms = static_cast<int>(rng.uniform(5, 60));
    std::string buffer;
    char chunk[4096];
    int waited = 0;
    while (waited < run_ms) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 1) > 0) {
        const ssize_t n = ::read(fds[0], chunk, sizeof chunk);
        if (n <= 0) break;  // The child died on its own.
        buffer.append(chunk, static_cast<std::size_t>(n));
        parse_reports(buffer, generation, acked);
      }
      ++waited;
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    // Reports written before the kill are still in the pipe.
    for (;;) {
      const ssize_t n = ::read(fds[0], chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    parse_reports(buffer, generation, acked);
    ::close(fds[0]);
    auto loop = Loop::uring();
    loop->run(verify(dir.path(), &acked, generation, &last));
  }
  MESSAGE("crash cycles: " << cycles << ", acknowledged appends: " << acked.count
                           << ", log ends at " << last << ", snapshot at " << acked.snapshot);
  CHECK(acked.count > static_cast<std::uint64_t>(cycles));
}

}  // namespace
}  // namespace uraft
