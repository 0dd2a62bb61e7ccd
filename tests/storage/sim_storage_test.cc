// SimStorage on virtual time: a crash keeps every completed write and a prefix of the
// others (never a later write without an earlier one), and concurrent writes share syncs.
#include "raft/sim_storage.h"

#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "core/loop.h"
#include "core/scope.h"
#include "raft/mem_storage.h"
#include "tests/storage/storage_fixtures.h"

namespace uraft {
namespace {

Task<void> issue_write(SimStorage* storage, test::RandomWrite w, std::uint64_t seq,
                       std::uint64_t* completed_max) {
  co_await test::apply_write(*storage, std::move(w));
  *completed_max = std::max(*completed_max, seq);
}

Task<void> crash_scenario(std::uint64_t seed, int* prefix_hits) {
  Rng rng(seed);
  SimStorage storage;
  MemStorage model;
  // states[k]: the state after the first k writes.
  std::vector<RecoveredState> states;
  states.push_back(co_await model.load());
  Scope scope;
  std::uint64_t completed_max = 0;
  const int writes = 60;
  for (int k = 1; k <= writes; ++k) {
    test::RandomWrite w = test::random_write(rng, states.back(), 50);
    co_await test::apply_write(model, w);
    states.push_back(co_await model.load());
    scope.spawn(issue_write(&storage, std::move(w), static_cast<std::uint64_t>(k), &completed_max));
    if (rng.uniform(0, 2) == 0) co_await sleep_for(std::chrono::microseconds(rng.uniform(0, 3000)));
  }
  co_await sleep_for(std::chrono::microseconds(rng.uniform(0, 4000)));
  // Crash now: what the successor loads must be the state after some prefix k of the
  // writes, with k at least every completed write.
  std::unique_ptr<SimStorage> after = storage.crash(Loop::current().rng());
  const RecoveredState got = co_await after->load();
  int match = -1;
  for (int k = writes; k >= 0; --k) {
    const RecoveredState& s = states[static_cast<std::size_t>(k)];
    if (s.hard_state == got.hard_state && s.snapshot == got.snapshot && s.entries == got.entries) {
      match = k;
      break;
    }
  }
  CHECK(match >= 0);
  CHECK(static_cast<std::uint64_t>(match) >= completed_max);
  if (match < writes) ++*prefix_hits;
  co_await scope.join();
}

TEST_CASE("sim storage: a crash keeps every completed write and a prefix of the unsynced ones") {
  // Goal: the Storage contract's durability and ordering under SimStorage's crash model.
  int prefix_hits = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    CAPTURE(seed);
    auto loop = Loop::simulated({.seed = seed});
    loop->run(crash_scenario(seed, &prefix_hits));
  }
  CHECK(prefix_hits > 5);  // Crashes did lose unsynced writes.
}

Task<void> shared_syncs() {
  SimStorage storage;
  Scope scope;
  std::uint64_t completed = 0;
  for (std::uint64_t i = 1; i <= 50; ++i) {
    test::RandomWrite w;
    w.first = LogIndex(i);
    w.entries.push_back(LogEntry{Term(1), "x"});
    scope.spawn(issue_write(&storage, std::move(w), i, &completed));
  }
  co_await scope.join();
  CHECK(completed == 50);
  CHECK(storage.syncs() <= 2);
  CHECK(storage.unsynced() == 0);
  const std::unique_ptr<SimStorage> after = storage.crash(Loop::current().rng());
  CHECK(after->last_index() == LogIndex(50));  // Everything completed survives.
  CHECK(after->writes_lost() == 0);
}

TEST_CASE("sim storage: writes issued together complete with one sync") {
  // Goal: group commit in the simulated disk, as on the real one.
  auto loop = Loop::simulated({.seed = 3});
  loop->run(shared_syncs());
}

}  // namespace
}  // namespace uraft
