// The Raft lab's 28 tests (6.5840 2023, src/raft/test_test.go), ported step by step with the
// same names, bounds and failure messages; virtual time replaces real time. See
// shared/spec/raft-lab-tests.md §1 for each test's steps.
#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "core/loop.h"
#include "tests/raft/lab/lab.h"
#include "tests/raft/lab/lab_config.h"

namespace uraft::lab {
namespace {

constexpr Duration kEto = kElectionTimeout;

Value I(std::int64_t x) { return Value{x}; }
bool is_int(const Value& v) { return std::holds_alternative<std::int64_t>(v); }
std::int64_t as_int(const Value& v) { return std::get<std::int64_t>(v); }

[[noreturn]] void fatal(const std::string& msg) { throw TestFailure(msg); }

// ---------------------------------------------------------------- 2A

Task<void> TestInitialElection2A(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2A): initial election");

  // Is a leader elected?
  (void)co_await cfg.check_one_leader();

  // Sleep a bit to avoid racing with followers learning of the election, then check that
  // all peers agree on the term.
  co_await cfg.sleep(50ms);
  const int term1 = cfg.check_terms();
  if (term1 < 1) fatal(cat("term is ", term1, ", but should be at least 1"));

  // Does the leader+term stay the same if there is no network failure?
  co_await cfg.sleep(2 * kEto);
  const int term2 = cfg.check_terms();
  if (term1 != term2) {
    t.warnings.push_back("warning: term changed even though there were no failures");
  }

  // There should still be a leader.
  (void)co_await cfg.check_one_leader();
  cfg.end();
}

Task<void> TestReElection2A(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2A): election after network failure");

  const int leader1 = co_await cfg.check_one_leader();

  // If the leader disconnects, a new one should be elected.
  cfg.disconnect(leader1);
  (void)co_await cfg.check_one_leader();

  // If the old leader rejoins, that shouldn't disturb the new leader. And the old leader
  // should switch to follower.
  cfg.connect(leader1);
  const int leader2 = co_await cfg.check_one_leader();

  // If there's no quorum, no new leader should be elected.
  cfg.disconnect(leader2);
  cfg.disconnect((leader2 + 1) % servers);
  co_await cfg.sleep(2 * kEto);

  // Check that the one connected server does not think it is the leader.
  cfg.check_no_leader();

  // If a quorum arises, it should elect a leader.
  cfg.connect((leader2 + 1) % servers);
  (void)co_await cfg.check_one_leader();

  // Re-join of last node shouldn't prevent leader from existing.
  cfg.connect(leader2);
  (void)co_await cfg.check_one_leader();
  cfg.end();
}

Task<void> TestManyElections2A(TestContext& t) {
  const int servers = 7;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2A): multiple elections");

  (void)co_await cfg.check_one_leader();

  const int iters = 10;
  for (int ii = 1; ii < iters; ++ii) {
    // Disconnect three nodes.
    const int i1 = static_cast<int>(rand_int() % servers);
    const int i2 = static_cast<int>(rand_int() % servers);
    const int i3 = static_cast<int>(rand_int() % servers);
    cfg.disconnect(i1);
    cfg.disconnect(i2);
    cfg.disconnect(i3);

    // Either the current leader should still be alive, or the remaining four should elect
    // a new one.
    (void)co_await cfg.check_one_leader();

    cfg.connect(i1);
    cfg.connect(i2);
    cfg.connect(i3);
  }
  (void)co_await cfg.check_one_leader();
  cfg.end();
}

// ---------------------------------------------------------------- 2B

Task<void> TestBasicAgree2B(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2B): basic agreement");

  const int iters = 3;
  for (int index = 1; index < iters + 1; ++index) {
    const auto [nd, unused] = cfg.n_committed(index);
    if (nd > 0) fatal("some have committed before Start()");

    const std::int64_t xindex = co_await cfg.one(I(index * 100), servers, false);
    if (xindex != index) fatal(cat("got index ", xindex, " but expected ", index));
  }
  cfg.end();
}

// Check, based on counting bytes of RPCs, that each command is sent to each peer just once.
Task<void> TestRPCBytes2B(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2B): RPC byte count");

  (void)co_await cfg.one(I(99), servers, false);
  const std::uint64_t bytes0 = cfg.bytes_total();

  const int iters = 10;
  std::uint64_t sent = 0;
  for (int index = 2; index < iters + 2; ++index) {
    Value cmd{randstring(5000)};
    const std::int64_t xindex = co_await cfg.one(cmd, servers, false);
    if (xindex != index) fatal(cat("got index ", xindex, " but expected ", index));
    sent += std::get<std::string>(cmd).size();
  }

  const std::uint64_t bytes1 = cfg.bytes_total();
  const std::uint64_t got = bytes1 - bytes0;
  const std::uint64_t expected = static_cast<std::uint64_t>(servers) * sent;
  if (got > expected + 50000) fatal(cat("too many RPC bytes; got ", got, ", expected ", expected));
  cfg.end();
}

// Test just failure of followers.
Task<void> TestFollowerFailure2B(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2B): test progressive failure of followers");

  (void)co_await cfg.one(I(101), servers, false);

  // Disconnect one follower from the network.
  const int leader1 = co_await cfg.check_one_leader();
  cfg.disconnect((leader1 + 1) % servers);

  // The leader and remaining follower should be able to agree despite the disconnected
  // follower.
  (void)co_await cfg.one(I(102), servers - 1, false);
  co_await cfg.sleep(kEto);
  (void)co_await cfg.one(I(103), servers - 1, false);

  // Disconnect the remaining follower.
  const int leader2 = co_await cfg.check_one_leader();
  cfg.disconnect((leader2 + 1) % servers);
  cfg.disconnect((leader2 + 2) % servers);

  // Submit a command.
  const StartResult r = cfg.raft(leader2)->start(encode_value(I(104)));
  if (!r.is_leader) fatal("leader rejected Start()");
  if (r.index.value != 4) fatal(cat("expected index 4, got ", r.index.value));

  co_await cfg.sleep(2 * kEto);

  // Check that command 104 did not commit.
  const auto [n, unused] = cfg.n_committed(static_cast<std::int64_t>(r.index.value));
  if (n > 0) fatal(cat(n, " committed but no majority"));
  cfg.end();
}

// Test just failure of leaders.
Task<void> TestLeaderFailure2B(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2B): test failure of leaders");

  (void)co_await cfg.one(I(101), servers, false);

  // Disconnect the first leader.
  const int leader1 = co_await cfg.check_one_leader();
  cfg.disconnect(leader1);

  // The remaining followers should elect a new leader.
  (void)co_await cfg.one(I(102), servers - 1, false);
  co_await cfg.sleep(kEto);
  (void)co_await cfg.one(I(103), servers - 1, false);

  // Disconnect the new leader.
  const int leader2 = co_await cfg.check_one_leader();
  cfg.disconnect(leader2);

  // Submit a command to each server.
  for (int i = 0; i < servers; ++i) (void)cfg.raft(i)->start(encode_value(I(104)));

  co_await cfg.sleep(2 * kEto);

  // Check that command 104 did not commit.
  const auto [n, unused] = cfg.n_committed(4);
  if (n > 0) fatal(cat(n, " committed but no majority"));
  cfg.end();
}

// Test that a follower participates after disconnect and re-connect.
Task<void> TestFailAgree2B(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2B): agreement after follower reconnects");

  (void)co_await cfg.one(I(101), servers, false);

  // Disconnect one follower from the network.
  const int leader = co_await cfg.check_one_leader();
  cfg.disconnect((leader + 1) % servers);

  // The leader and remaining follower should be able to agree despite the disconnected
  // follower.
  (void)co_await cfg.one(I(102), servers - 1, false);
  (void)co_await cfg.one(I(103), servers - 1, false);
  co_await cfg.sleep(kEto);
  (void)co_await cfg.one(I(104), servers - 1, false);
  (void)co_await cfg.one(I(105), servers - 1, false);

  // Re-connect.
  cfg.connect((leader + 1) % servers);

  // The full set of servers should preserve previous agreements, and be able to agree on
  // new commands.
  (void)co_await cfg.one(I(106), servers, true);
  co_await cfg.sleep(kEto);
  (void)co_await cfg.one(I(107), servers, true);
  cfg.end();
}

Task<void> TestFailNoAgree2B(TestContext& t) {
  const int servers = 5;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2B): no agreement if too many followers disconnect");

  (void)co_await cfg.one(I(10), servers, false);

  // 3 of 5 followers disconnect.
  const int leader = co_await cfg.check_one_leader();
  cfg.disconnect((leader + 1) % servers);
  cfg.disconnect((leader + 2) % servers);
  cfg.disconnect((leader + 3) % servers);

  const StartResult r = cfg.raft(leader)->start(encode_value(I(20)));
  if (!r.is_leader) fatal("leader rejected Start()");
  if (r.index.value != 2) fatal(cat("expected index 2, got ", r.index.value));

  co_await cfg.sleep(2 * kEto);

  const auto [n, unused] = cfg.n_committed(static_cast<std::int64_t>(r.index.value));
  if (n > 0) fatal(cat(n, " committed but no majority"));

  // Repair.
  cfg.connect((leader + 1) % servers);
  cfg.connect((leader + 2) % servers);
  cfg.connect((leader + 3) % servers);

  // The disconnected majority may have chosen a leader from among their own ranks,
  // forgetting index 2.
  const int leader2 = co_await cfg.check_one_leader();
  const StartResult r2 = cfg.raft(leader2)->start(encode_value(I(30)));
  if (!r2.is_leader) fatal("leader2 rejected Start()");
  if (r2.index.value < 2 || r2.index.value > 3) fatal(cat("unexpected index ", r2.index.value));

  (void)co_await cfg.one(I(1000), servers, true);
  cfg.end();
}

Task<void> TestConcurrentStarts2B(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2B): concurrent Start()s");

  bool success = false;
  for (int attempt = 0; attempt < 5 && !success; ++attempt) {
    if (attempt > 0) {
      // Give solution some time to settle.
      co_await cfg.sleep(3s);
    }

    const int leader = co_await cfg.check_one_leader();
    const StartResult first = cfg.raft(leader)->start(encode_value(I(1)));
    if (!first.is_leader) continue;  // Leader moved on really quickly.
    const Term term = first.term;

    // Start() returns at once (no goroutines needed for concurrency): 5 starts, collected
    // only if they went in during `term`.
    const int iters = 5;
    std::vector<std::int64_t> is;
    for (int ii = 0; ii < iters; ++ii) {
      const StartResult r = cfg.raft(leader)->start(encode_value(I(100 + ii)));
      if (r.term != term || !r.is_leader) continue;
      is.push_back(static_cast<std::int64_t>(r.index.value));
    }

    bool moved_on = false;
    for (int j = 0; j < servers; ++j) {
      // Term changed -- can't expect low RPC counts.
      if (cfg.raft(j)->state().term != term) moved_on = true;
    }
    if (moved_on) continue;

    bool failed = false;
    std::vector<std::int64_t> cmds;
    for (const std::int64_t index : is) {
      const Value cmd = co_await cfg.wait(index, servers, static_cast<std::int64_t>(term.value));
      if (!is_int(cmd)) fatal(cat("value ", format_value(cmd), " is not an int"));
      if (as_int(cmd) == -1) {
        // Peers have moved on to later terms so we can't expect all Start()s to have
        // succeeded.
        failed = true;
        break;
      }
      cmds.push_back(as_int(cmd));
    }
    if (failed) continue;

    for (int ii = 0; ii < iters; ++ii) {
      const std::int64_t x = 100 + ii;
      if (std::find(cmds.begin(), cmds.end(), x) == cmds.end()) {
        fatal(cat("cmd ", x, " missing in ", format_values(cmds)));
      }
    }
    success = true;
  }
  if (!success) fatal("term changed too often");
  cfg.end();
}

Task<void> TestRejoin2B(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2B): rejoin of partitioned leader");

  (void)co_await cfg.one(I(101), servers, true);

  // Leader network failure.
  const int leader1 = co_await cfg.check_one_leader();
  cfg.disconnect(leader1);

  // Make old leader try to agree on some entries.
  (void)cfg.raft(leader1)->start(encode_value(I(102)));
  (void)cfg.raft(leader1)->start(encode_value(I(103)));
  (void)cfg.raft(leader1)->start(encode_value(I(104)));

  // New leader commits, also for index=2.
  (void)co_await cfg.one(I(103), 2, true);

  // New leader network failure.
  const int leader2 = co_await cfg.check_one_leader();
  cfg.disconnect(leader2);

  // Old leader connected again.
  cfg.connect(leader1);

  (void)co_await cfg.one(I(104), 2, true);

  // All together now.
  cfg.connect(leader2);

  (void)co_await cfg.one(I(105), servers, true);
  cfg.end();
}

Task<void> TestBackup2B(TestContext& t) {
  const int servers = 5;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2B): leader backs up quickly over incorrect follower logs");

  (void)co_await cfg.one(I(rand_int()), servers, true);

  // Put leader and one follower in a partition.
  const int leader1 = co_await cfg.check_one_leader();
  cfg.disconnect((leader1 + 2) % servers);
  cfg.disconnect((leader1 + 3) % servers);
  cfg.disconnect((leader1 + 4) % servers);

  // Submit lots of commands that won't commit.
  for (int i = 0; i < 50; ++i) (void)cfg.raft(leader1)->start(encode_value(I(rand_int())));

  co_await cfg.sleep(kEto / 2);

  cfg.disconnect((leader1 + 0) % servers);
  cfg.disconnect((leader1 + 1) % servers);

  // Allow other partition to recover.
  cfg.connect((leader1 + 2) % servers);
  cfg.connect((leader1 + 3) % servers);
  cfg.connect((leader1 + 4) % servers);

  // Lots of successful commands to new group.
  for (int i = 0; i < 50; ++i) (void)co_await cfg.one(I(rand_int()), 3, true);

  // Now another partitioned leader and one follower.
  const int leader2 = co_await cfg.check_one_leader();
  int other = (leader1 + 2) % servers;
  if (leader2 == other) other = (leader2 + 1) % servers;
  cfg.disconnect(other);

  // Lots more commands that won't commit.
  for (int i = 0; i < 50; ++i) (void)cfg.raft(leader2)->start(encode_value(I(rand_int())));

  co_await cfg.sleep(kEto / 2);

  // Bring original leader back to life.
  for (int i = 0; i < servers; ++i) cfg.disconnect(i);
  cfg.connect((leader1 + 0) % servers);
  cfg.connect((leader1 + 1) % servers);
  cfg.connect(other);

  // Lots of successful commands to new group.
  for (int i = 0; i < 50; ++i) (void)co_await cfg.one(I(rand_int()), 3, true);

  // Now everyone.
  for (int i = 0; i < servers; ++i) cfg.connect(i);
  (void)co_await cfg.one(I(rand_int()), servers, true);
  cfg.end();
}

Task<void> TestCount2B(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2B): RPC counts aren't too high");

  auto rpcs = [&cfg, servers] {
    std::uint64_t n = 0;
    for (int j = 0; j < servers; ++j) n += cfg.rpc_count(j);
    return n;
  };

  int leader = co_await cfg.check_one_leader();

  std::uint64_t total1 = rpcs();
  if (total1 > 30 || total1 < 1) {
    fatal(cat("too many or few RPCs (", total1, ") to elect initial leader\n"));
  }

  std::uint64_t total2 = 0;
  bool success = false;
  for (int attempt = 0; attempt < 5 && !success; ++attempt) {
    if (attempt > 0) {
      // Give solution some time to settle.
      co_await cfg.sleep(3s);
    }

    leader = co_await cfg.check_one_leader();
    total1 = rpcs();

    const int iters = 10;
    const StartResult start = cfg.raft(leader)->start(encode_value(I(1)));
    if (!start.is_leader) continue;  // Leader moved on really quickly.
    const auto starti = static_cast<std::int64_t>(start.index.value);
    const Term term = start.term;
    std::vector<std::int64_t> cmds;
    bool moved_on = false;
    for (int i = 1; i < iters + 2; ++i) {
      const std::int64_t x = rand_int31();
      cmds.push_back(x);
      const StartResult r = cfg.raft(leader)->start(encode_value(I(x)));
      if (r.term != term || !r.is_leader) {
        // Term changed while starting / no longer the leader, so term has changed.
        moved_on = true;
        break;
      }
      if (starti + i != static_cast<std::int64_t>(r.index.value)) fatal("Start() failed");
    }
    if (moved_on) continue;

    for (int i = 1; i < iters + 1; ++i) {
      const Value cmd =
          co_await cfg.wait(starti + i, servers, static_cast<std::int64_t>(term.value));
      if (!is_int(cmd) || as_int(cmd) != cmds[static_cast<std::size_t>(i - 1)]) {
        if (is_int(cmd) && as_int(cmd) == -1) {
          // Term changed -- try again.
          moved_on = true;
          break;
        }
        fatal(cat("wrong value ", format_value(cmd), " committed for index ", starti + i,
                  "; expected ", format_values(cmds), "\n"));
      }
    }
    if (moved_on) continue;

    bool failed = false;
    total2 = 0;
    for (int j = 0; j < servers; ++j) {
      // Term changed -- can't expect low RPC counts.
      if (cfg.raft(j)->state().term != term) failed = true;
      total2 += cfg.rpc_count(j);
    }
    if (failed) continue;

    if (total2 - total1 > static_cast<std::uint64_t>((iters + 1 + 3) * 3)) {
      fatal(cat("too many RPCs (", total2 - total1, ") for ", iters, " entries\n"));
    }
    success = true;
  }
  if (!success) fatal("term changed too often");

  co_await cfg.sleep(kEto);

  std::uint64_t total3 = 0;
  for (int j = 0; j < servers; ++j) total3 += cfg.rpc_count(j);
  if (total3 - total2 > 3 * 20) {
    fatal(cat("too many RPCs (", total3 - total2, ") for 1 second of idleness\n"));
  }
  cfg.end();
}

// ---------------------------------------------------------------- 2C

Task<void> TestPersist12C(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2C): basic persistence");

  (void)co_await cfg.one(I(11), servers, true);

  // Crash and re-start all.
  for (int i = 0; i < servers; ++i) co_await cfg.start1(i);
  for (int i = 0; i < servers; ++i) {
    cfg.disconnect(i);
    cfg.connect(i);
  }

  (void)co_await cfg.one(I(12), servers, true);

  const int leader1 = co_await cfg.check_one_leader();
  cfg.disconnect(leader1);
  co_await cfg.start1(leader1);
  cfg.connect(leader1);

  (void)co_await cfg.one(I(13), servers, true);

  const int leader2 = co_await cfg.check_one_leader();
  cfg.disconnect(leader2);
  (void)co_await cfg.one(I(14), servers - 1, true);
  co_await cfg.start1(leader2);
  cfg.connect(leader2);

  (void)co_await cfg.wait(4, servers, -1);  // Wait for leader2 to join before killing i3.

  const int i3 = (co_await cfg.check_one_leader() + 1) % servers;
  cfg.disconnect(i3);
  (void)co_await cfg.one(I(15), servers - 1, true);
  co_await cfg.start1(i3);
  cfg.connect(i3);

  (void)co_await cfg.one(I(16), servers, true);
  cfg.end();
}

Task<void> TestPersist22C(TestContext& t) {
  const int servers = 5;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2C): more persistence");

  int index = 1;
  for (int iters = 0; iters < 5; ++iters) {
    (void)co_await cfg.one(I(10 + index), servers, true);
    ++index;

    const int leader1 = co_await cfg.check_one_leader();

    cfg.disconnect((leader1 + 1) % servers);
    cfg.disconnect((leader1 + 2) % servers);

    (void)co_await cfg.one(I(10 + index), servers - 2, true);
    ++index;

    cfg.disconnect((leader1 + 0) % servers);
    cfg.disconnect((leader1 + 3) % servers);
    cfg.disconnect((leader1 + 4) % servers);

    co_await cfg.start1((leader1 + 1) % servers);
    co_await cfg.start1((leader1 + 2) % servers);
    cfg.connect((leader1 + 1) % servers);
    cfg.connect((leader1 + 2) % servers);

    co_await cfg.sleep(kEto);

    co_await cfg.start1((leader1 + 3) % servers);
    cfg.connect((leader1 + 3) % servers);

    (void)co_await cfg.one(I(10 + index), servers - 2, true);
    ++index;

    cfg.connect((leader1 + 4) % servers);
    cfg.connect((leader1 + 0) % servers);
  }

  (void)co_await cfg.one(I(1000), servers, true);
  cfg.end();
}

Task<void> TestPersist32C(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2C): partitioned leader and one follower crash, leader restarts");

  (void)co_await cfg.one(I(101), 3, true);

  const int leader = co_await cfg.check_one_leader();
  cfg.disconnect((leader + 2) % servers);

  (void)co_await cfg.one(I(102), 2, true);

  co_await cfg.crash1((leader + 0) % servers);
  co_await cfg.crash1((leader + 1) % servers);
  cfg.connect((leader + 2) % servers);
  co_await cfg.start1((leader + 0) % servers);
  cfg.connect((leader + 0) % servers);

  (void)co_await cfg.one(I(103), 2, true);

  co_await cfg.start1((leader + 1) % servers);
  cfg.connect((leader + 1) % servers);

  (void)co_await cfg.one(I(104), servers, true);
  cfg.end();
}

// Test the scenarios described in Figure 8 of the extended Raft paper. Each iteration asks
// a leader, if there is one, to insert a command in the Raft log. If there is a leader, that
// leader will fail quickly with a high probability (perhaps without committing the command),
// or crash after a while with low probability (most likely committing the command). If the
// number of alive servers isn't enough to form a majority, perhaps start a new server. The
// leader in a new term may try to finish replicating log entries that haven't been
// committed yet.
Task<void> TestFigure82C(TestContext& t) {
  const int servers = 5;
  LabConfig& cfg = *co_await t.make_config(servers, false, false);
  cfg.begin("Test (2C): Figure 8");

  (void)co_await cfg.one(I(rand_int()), 1, true);

  int nup = servers;
  for (int iters = 0; iters < 1000; ++iters) {
    int leader = -1;
    for (int i = 0; i < servers; ++i) {
      if (cfg.raft(i) != nullptr) {
        if (cfg.raft(i)->start(encode_value(I(rand_int()))).is_leader) leader = i;
      }
    }

    if ((rand_int() % 1000) < 100) {
      const std::int64_t ms = rand_int() % (kEto.count() / 1000000 / 2);
      co_await cfg.sleep(std::chrono::milliseconds(ms));
    } else {
      const std::int64_t ms = rand_int() % 13;
      co_await cfg.sleep(std::chrono::milliseconds(ms));
    }

    if (leader != -1) {
      co_await cfg.crash1(leader);
      --nup;
    }

    if (nup < 3) {
      const int s = static_cast<int>(rand_int() % servers);
      if (cfg.raft(s) == nullptr) {
        co_await cfg.start1(s);
        cfg.connect(s);
        ++nup;
      }
    }
  }

  for (int i = 0; i < servers; ++i) {
    if (cfg.raft(i) == nullptr) {
      co_await cfg.start1(i);
      cfg.connect(i);
    }
  }

  (void)co_await cfg.one(I(rand_int()), servers, true);
  cfg.end();
}

Task<void> one_goroutine(LabConfig* cfg, Value cmd, int expected_servers, bool retry) {
  (void)co_await cfg->one(std::move(cmd), expected_servers, retry);
}

Task<void> TestUnreliableAgree2C(TestContext& t) {
  const int servers = 5;
  LabConfig& cfg = *co_await t.make_config(servers, true, false);
  cfg.begin("Test (2C): unreliable agreement");

  for (int iters = 1; iters < 50; ++iters) {
    for (int j = 0; j < 4; ++j) {
      cfg.goroutines().spawn(one_goroutine(&cfg, I(100 * iters + j), 1, true));
    }
    (void)co_await cfg.one(I(iters), 1, true);
  }

  cfg.setunreliable(false);

  co_await cfg.goroutines().join();

  (void)co_await cfg.one(I(100), servers, true);
  cfg.end();
}

Task<void> TestFigure8Unreliable2C(TestContext& t) {
  const int servers = 5;
  LabConfig& cfg = *co_await t.make_config(servers, true, false);
  cfg.begin("Test (2C): Figure 8 (unreliable)");

  (void)co_await cfg.one(I(rand_int() % 10000), 1, true);

  int nup = servers;
  for (int iters = 0; iters < 1000; ++iters) {
    if (iters == 200) cfg.setlongreordering(true);
    int leader = -1;
    for (int i = 0; i < servers; ++i) {
      const bool ok = cfg.raft(i)->start(encode_value(I(rand_int() % 10000))).is_leader;
      if (ok && cfg.connected(i)) leader = i;
    }

    if ((rand_int() % 1000) < 100) {
      const std::int64_t ms = rand_int() % (kEto.count() / 1000000 / 2);
      co_await cfg.sleep(std::chrono::milliseconds(ms));
    } else {
      const std::int64_t ms = rand_int() % 13;
      co_await cfg.sleep(std::chrono::milliseconds(ms));
    }

    if (leader != -1 && (rand_int() % 1000) < kEto.count() / 1000000 / 2) {
      cfg.disconnect(leader);
      --nup;
    }

    if (nup < 3) {
      const int s = static_cast<int>(rand_int() % servers);
      if (!cfg.connected(s)) {
        cfg.connect(s);
        ++nup;
      }
    }
  }

  for (int i = 0; i < servers; ++i) {
    if (!cfg.connected(i)) cfg.connect(i);
  }

  (void)co_await cfg.one(I(rand_int() % 10000), servers, true);
  cfg.end();
}

// The churn clients' shared state: owned jointly, so a client outlives a failed test body.
struct Churn {
  bool stop = false;
  std::vector<std::optional<std::vector<std::int64_t>>> values;  // Per client; nullopt: died.
};

Task<void> churn_client(LabConfig* cfg, int me, std::shared_ptr<Churn> churn) {
  const int servers = cfg->n();
  std::vector<std::int64_t> values;
  while (!churn->stop) {
    const std::int64_t x = rand_int();
    std::int64_t index = -1;
    bool ok = false;
    for (int i = 0; i < servers; ++i) {
      // Try them all, maybe one of them is a leader.
      if (Node* rf = cfg->raft(i)) {
        const StartResult r = rf->start(encode_value(I(x)));
        if (r.is_leader) {
          ok = true;
          index = static_cast<std::int64_t>(r.index.value);
        }
      }
    }
    if (ok) {
      // Maybe leader will commit our value, maybe not. But don't wait forever.
      static constexpr int kWaits[] = {10, 20, 50, 100, 200};
      for (const int to : kWaits) {
        const auto [nd, cmd] = cfg->n_committed(index);
        if (nd > 0) {
          if (!is_int(cmd)) fatal("wrong command type");
          if (as_int(cmd) == x) values.push_back(x);
          break;
        }
        co_await cfg->sleep(std::chrono::milliseconds(to));
      }
    } else {
      co_await cfg->sleep(std::chrono::milliseconds(79 + me * 17));
    }
  }
  churn->values[static_cast<std::size_t>(me)] = std::move(values);
}

Task<void> internal_churn(TestContext& t, bool unreliable) {
  const int servers = 5;
  LabConfig& cfg = *co_await t.make_config(servers, unreliable, false);
  if (unreliable) {
    cfg.begin("Test (2C): unreliable churn");
  } else {
    cfg.begin("Test (2C): churn");
  }

  const int ncli = 3;
  auto churn = std::make_shared<Churn>();
  churn->values.resize(ncli);
  for (int i = 0; i < ncli; ++i) cfg.goroutines().spawn(churn_client(&cfg, i, churn));

  for (int iters = 0; iters < 20; ++iters) {
    if ((rand_int() % 1000) < 200) {
      const int i = static_cast<int>(rand_int() % servers);
      cfg.disconnect(i);
    }

    if ((rand_int() % 1000) < 500) {
      const int i = static_cast<int>(rand_int() % servers);
      if (cfg.raft(i) == nullptr) co_await cfg.start1(i);
      cfg.connect(i);
    }

    if ((rand_int() % 1000) < 200) {
      const int i = static_cast<int>(rand_int() % servers);
      if (cfg.raft(i) != nullptr) co_await cfg.crash1(i);
    }

    // Make crash/restart infrequent enough that the peers can often keep up, but not so
    // infrequent that everything has settled down from one change to the next. Pick a value
    // smaller than the election timeout, but not hugely smaller.
    co_await cfg.sleep((kEto * 7) / 10);
  }

  co_await cfg.sleep(kEto);
  cfg.setunreliable(false);
  for (int i = 0; i < servers; ++i) {
    if (cfg.raft(i) == nullptr) co_await cfg.start1(i);
    cfg.connect(i);
  }

  churn->stop = true;
  co_await cfg.goroutines().join();

  std::vector<std::int64_t> values;
  for (int i = 0; i < ncli; ++i) {
    const auto& vv = churn->values[static_cast<std::size_t>(i)];
    if (!vv) fatal("client failed");
    values.insert(values.end(), vv->begin(), vv->end());
  }

  co_await cfg.sleep(kEto);

  const std::int64_t last_index = co_await cfg.one(I(rand_int()), servers, true);

  std::vector<std::int64_t> really;
  for (std::int64_t index = 1; index <= last_index; ++index) {
    const Value v = co_await cfg.wait(index, servers, -1);
    if (!is_int(v)) fatal("not an int");
    really.push_back(as_int(v));
  }

  for (const std::int64_t v1 : values) {
    if (std::find(really.begin(), really.end(), v1) == really.end()) fatal("didn't find a value");
  }
  cfg.end();
}

Task<void> TestReliableChurn2C(TestContext& t) { co_await internal_churn(t, false); }
Task<void> TestUnreliableChurn2C(TestContext& t) { co_await internal_churn(t, true); }

// ---------------------------------------------------------------- 2D

constexpr std::size_t kMaxLogSize = 2000;

Task<void> snapcommon(TestContext& t, const char* name, bool disconnect, bool reliable,
                      bool crash) {
  const int iters = 30;
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, !reliable, true);
  cfg.begin(name);

  (void)co_await cfg.one(I(rand_int()), servers, true);
  int leader1 = co_await cfg.check_one_leader();

  for (int i = 0; i < iters; ++i) {
    int victim = (leader1 + 1) % servers;
    int sender = leader1;
    if (i % 3 == 1) {
      sender = (leader1 + 1) % servers;
      victim = leader1;
    }

    if (disconnect) {
      cfg.disconnect(victim);
      (void)co_await cfg.one(I(rand_int()), servers - 1, true);
    }
    if (crash) {
      co_await cfg.crash1(victim);
      (void)co_await cfg.one(I(rand_int()), servers - 1, true);
    }

    // Perhaps send enough to get a snapshot.
    const std::int64_t nn = (kSnapShotInterval / 2) + (rand_int() % kSnapShotInterval);
    for (std::int64_t k = 0; k < nn; ++k)
      (void)cfg.raft(sender)->start(encode_value(I(rand_int())));

    // Let applier threads catch up with the Start()'s.
    if (!disconnect && !crash) {
      // Make sure all followers have caught up, so that an InstallSnapshot RPC isn't
      // required for TestSnapshotBasic2D().
      (void)co_await cfg.one(I(rand_int()), servers, true);
    } else {
      (void)co_await cfg.one(I(rand_int()), servers - 1, true);
    }

    if (cfg.log_size() >= kMaxLogSize) fatal("Log size too large");

    if (disconnect) {
      // Reconnect a follower, who maybe behind and needs to receive a snapshot to catch up.
      cfg.connect(victim);
      (void)co_await cfg.one(I(rand_int()), servers, true);
      leader1 = co_await cfg.check_one_leader();
    }
    if (crash) {
      co_await cfg.start1(victim);
      cfg.connect(victim);
      (void)co_await cfg.one(I(rand_int()), servers, true);
      leader1 = co_await cfg.check_one_leader();
    }
  }
  cfg.end();
}

Task<void> TestSnapshotBasic2D(TestContext& t) {
  co_await snapcommon(t, "Test (2D): snapshots basic", false, true, false);
}
Task<void> TestSnapshotInstall2D(TestContext& t) {
  co_await snapcommon(t, "Test (2D): install snapshots (disconnect)", true, true, false);
}
Task<void> TestSnapshotInstallUnreliable2D(TestContext& t) {
  co_await snapcommon(t, "Test (2D): install snapshots (disconnect+unreliable)", true, false,
                      false);
}
Task<void> TestSnapshotInstallCrash2D(TestContext& t) {
  co_await snapcommon(t, "Test (2D): install snapshots (crash)", false, true, true);
}
Task<void> TestSnapshotInstallUnCrash2D(TestContext& t) {
  co_await snapcommon(t, "Test (2D): install snapshots (unreliable+crash)", false, false, true);
}

// Do the servers persist the snapshots, and restart using snapshot along with the tail of
// the log?
Task<void> TestSnapshotAllCrash2D(TestContext& t) {
  const int servers = 3;
  const int iters = 5;
  LabConfig& cfg = *co_await t.make_config(servers, false, true);
  cfg.begin("Test (2D): crash and restart all servers");

  (void)co_await cfg.one(I(rand_int()), servers, true);

  for (int i = 0; i < iters; ++i) {
    // Perhaps enough to get a snapshot.
    const std::int64_t nn = (kSnapShotInterval / 2) + (rand_int() % kSnapShotInterval);
    for (std::int64_t k = 0; k < nn; ++k) (void)co_await cfg.one(I(rand_int()), servers, true);

    const std::int64_t index1 = co_await cfg.one(I(rand_int()), servers, true);

    // Crash all.
    for (int k = 0; k < servers; ++k) co_await cfg.crash1(k);

    // Revive all.
    for (int k = 0; k < servers; ++k) {
      co_await cfg.start1(k);
      cfg.connect(k);
    }

    const std::int64_t index2 = co_await cfg.one(I(rand_int()), servers, true);
    if (index2 < index1 + 1) fatal(cat("index decreased from ", index1, " to ", index2));
  }
  cfg.end();
}

// Do servers correctly initialize their in-memory copy of the snapshot, making sure that
// future writes to persistent state don't lose state?
Task<void> TestSnapshotInit2D(TestContext& t) {
  const int servers = 3;
  LabConfig& cfg = *co_await t.make_config(servers, false, true);
  cfg.begin("Test (2D): snapshot initialization after crash");

  (void)co_await cfg.one(I(rand_int()), servers, true);

  // Enough ops to make a snapshot.
  const std::int64_t nn = kSnapShotInterval + 1;
  for (std::int64_t i = 0; i < nn; ++i) (void)co_await cfg.one(I(rand_int()), servers, true);

  // Crash all.
  for (int i = 0; i < servers; ++i) co_await cfg.crash1(i);

  // Revive all.
  for (int i = 0; i < servers; ++i) {
    co_await cfg.start1(i);
    cfg.connect(i);
  }

  // A single op, to get something to be written back to persistent storage.
  (void)co_await cfg.one(I(rand_int()), servers, true);

  // Crash all.
  for (int i = 0; i < servers; ++i) co_await cfg.crash1(i);

  // Revive all.
  for (int i = 0; i < servers; ++i) {
    co_await cfg.start1(i);
    cfg.connect(i);
  }

  // Do another op to trigger potential bug.
  (void)co_await cfg.one(I(rand_int()), servers, true);
  cfg.end();
}

}  // namespace

const std::vector<LabTest>& all_tests() {
  static const std::vector<LabTest> tests = {
      {"TestInitialElection2A", TestInitialElection2A},
      {"TestReElection2A", TestReElection2A},
      {"TestManyElections2A", TestManyElections2A},
      {"TestBasicAgree2B", TestBasicAgree2B},
      {"TestRPCBytes2B", TestRPCBytes2B},
      {"TestFollowerFailure2B", TestFollowerFailure2B},
      {"TestLeaderFailure2B", TestLeaderFailure2B},
      {"TestFailAgree2B", TestFailAgree2B},
      {"TestFailNoAgree2B", TestFailNoAgree2B},
      {"TestConcurrentStarts2B", TestConcurrentStarts2B},
      {"TestRejoin2B", TestRejoin2B},
      {"TestBackup2B", TestBackup2B},
      {"TestCount2B", TestCount2B},
      {"TestPersist12C", TestPersist12C},
      {"TestPersist22C", TestPersist22C},
      {"TestPersist32C", TestPersist32C},
      {"TestFigure82C", TestFigure82C},
      {"TestUnreliableAgree2C", TestUnreliableAgree2C},
      {"TestFigure8Unreliable2C", TestFigure8Unreliable2C},
      {"TestReliableChurn2C", TestReliableChurn2C},
      {"TestUnreliableChurn2C", TestUnreliableChurn2C},
      {"TestSnapshotBasic2D", TestSnapshotBasic2D},
      {"TestSnapshotInstall2D", TestSnapshotInstall2D},
      {"TestSnapshotInstallUnreliable2D", TestSnapshotInstallUnreliable2D},
      {"TestSnapshotInstallCrash2D", TestSnapshotInstallCrash2D},
      {"TestSnapshotInstallUnCrash2D", TestSnapshotInstallUnCrash2D},
      {"TestSnapshotAllCrash2D", TestSnapshotAllCrash2D},
      {"TestSnapshotInit2D", TestSnapshotInit2D},
  };
  return tests;
}

}  // namespace uraft::lab
