// Node: one Raft peer's drivers on the simulated loop — elections, replication, restart from
// storage, snapshots, persist-before-reply and role cancellation — through SimNetwork (reliable,
// labrpc's model) or a scripted endpoint that calls nothing.
#include "raft/node.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/loop.h"
#include "core/scope.h"
#include "core/when.h"
#include "net/sim_network.h"
#include "raft/invariants.h"
#include "raft/mem_storage.h"

namespace uraft {
namespace {

using namespace std::chrono_literals;

// `prefix` then `i` (appended, not operator+: g++ 12 -Wrestrict misfires on "lit" + string).
std::string numbered(const char* prefix, std::size_t i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

NodeId node_id(std::size_t i) { return NodeId{static_cast<std::uint32_t>(i)}; }

// An endpoint that refuses every call after a short wait: for driving handlers directly.
class NullEndpoint final : public RpcEndpoint {
 public:
  explicit NullEndpoint(NodeId self) : self_(self) {}
  NodeId self() const noexcept override { return self_; }
  Task<RpcResult> call(NodeId, Message, Duration timeout) override {
    ++calls;
    co_await sleep_for(timeout);
    co_return RpcResult::failure(RpcError::kTimeout);
  }
  void serve(RpcHandler* handler) override { served = handler; }

  int calls = 0;
  RpcHandler* served = nullptr;

 private:
  NodeId self_;
};

// A cluster of nodes on one SimNetwork, each with a task collecting its apply stream.
struct Cluster {
  explicit Cluster(std::size_t n, Config c = Config::lab()) : config(c), net(n), servers(n) {
    net.set_long_delays(true);
    for (std::size_t i = 0; i < n; ++i) servers[i].storage = std::make_unique<MemStorage>();
  }

  struct Server {
    std::unique_ptr<MemStorage> storage;
    std::unique_ptr<Node> node;
    std::vector<ApplyMsg> applied;
    std::vector<std::unique_ptr<Node>> dead;       // Killed instances, kept until the end.
    std::vector<std::unique_ptr<MemStorage>> old;  // Their storages (still written to).
  };

  static Task<void> collect(Node* node, std::vector<ApplyMsg>* out) {
    for (;;) {
      std::optional<ApplyMsg> m = co_await node->apply_channel().receive();
      if (!m) co_return;
      out->push_back(std::move(*m));
    }
  }

  Task<void> start(std::size_t i) {
    Server& s = servers[i];
    const RecoveredState recovered = co_await s.storage->load();
    const NodeId id{static_cast<std::uint32_t>(i)};
    s.node =
        std::make_unique<Node>(id, servers.size(), net.endpoint(id), *s.storage, config, recovered);
    tasks.spawn(s.node->run());
    tasks.spawn(collect(s.node.get(), &s.applied));
    net.connect(id);
  }

  Task<void> start_all() {
    for (std::size_t i = 0; i < servers.size(); ++i) co_await start(i);
  }

  // Crash i: its storage survives as a copy; the old instance may keep writing the old one.
  Task<void> crash(std::size_t i) {
    Server& s = servers[i];
    const NodeId id{static_cast<std::uint32_t>(i)};
    net.disconnect(id);
    co_await net.crash(id);
    std::unique_ptr<MemStorage> copy = s.storage->copy();
    s.node->kill();
    s.dead.push_back(std::move(s.node));
    s.old.push_back(std::exchange(s.storage, std::move(copy)));
    s.applied.clear();
  }

  Task<void> stop() {
    for (Server& s : servers) {
      if (s.node) s.node->kill();
    }
    co_await tasks.join();
    co_await net.close();
  }

  std::optional<std::size_t> leader() const {
    std::optional<std::size_t> found;
    for (std::size_t i = 0; i < servers.size(); ++i) {
      const Server& s = servers[i];
      if (s.node && net.connected(NodeId{static_cast<std::uint32_t>(i)}) &&
          s.node->state().is_leader) {
        found = i;
      }
    }
    return found;
  }

  // Polls until some connected node leads; fails after 5 s.
  Task<std::size_t> wait_leader() {
    for (int i = 0; i < 100; ++i) {
      if (auto l = leader()) co_return *l;
      co_await sleep_for(50ms);
    }
    FAIL("no leader");
    co_return 0;
  }

  // Polls until a connected node leads in a term after `after`; fails after 10 s.
  Task<std::size_t> wait_leader_after(Term after) {
    for (int i = 0; i < 200; ++i) {
      if (auto l = leader(); l && servers[*l].node->current_term() > after) co_return *l;
      co_await sleep_for(50ms);
    }
    FAIL("no leader after term " << after);
    co_return 0;
  }

  void isolate_all() {
    for (std::size_t i = 0; i < servers.size(); ++i)
      net.disconnect(NodeId{static_cast<std::uint32_t>(i)});
  }
  void connect(std::size_t i) { net.connect(NodeId{static_cast<std::uint32_t>(i)}); }

  // The command `i` applied at `index`, if it did.
  std::optional<std::string> applied_at(std::size_t i, std::uint64_t index) const {
    for (const ApplyMsg& m : servers[i].applied) {
      if (m.kind == ApplyMsg::Kind::kCommand && m.index == LogIndex{index}) return m.data;
    }
    return std::nullopt;
  }

  // Polls until every running node applied `index`.
  Task<bool> wait_applied(std::uint64_t index_value) {
    const LogIndex index{index_value};
    for (int i = 0; i < 200; ++i) {
      bool all = true;
      for (const Server& s : servers) {
        if (s.node && s.node->last_applied() < index) all = false;
      }
      if (all) co_return true;
      co_await sleep_for(50ms);
    }
    co_return false;
  }

  Config config;
  SimNetwork net;
  std::vector<Server> servers;
  Scope tasks;
};

Task<void> elects_one_leader(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  const Term term = c->servers[l].node->current_term();
  CHECK(term >= Term{1});
  co_await sleep_for(2s);  // No failures: the leader keeps its term.
  CHECK(c->leader() == l);
  for (const auto& s : c->servers) {
    CHECK(s.node->current_term() == term);
    CHECK(s.node->leader_id() == NodeId{static_cast<std::uint32_t>(l)});
  }
  co_await c->stop();
}

TEST_CASE("three nodes elect one leader, which keeps its term while nothing fails") {
  // Goal: the election path end to end (timer, campaign, when_quorum, heartbeats).
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    auto loop = Loop::simulated({.seed = seed});
    Cluster c(3);
    loop->run(elects_one_leader(&c));
  }
}

Task<void> replicates_in_order(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  for (int i = 1; i <= 20; ++i) {
    const StartResult r = c->servers[l].node->start(numbered("cmd", static_cast<std::size_t>(i)));
    CHECK(r.is_leader);
    CHECK(r.index == LogIndex{static_cast<std::uint64_t>(i)});
  }
  CHECK(co_await c->wait_applied(20));
  for (const auto& s : c->servers) {
    REQUIRE(s.applied.size() == 20);
    for (std::size_t i = 0; i < 20; ++i) {
      CHECK(s.applied[i].kind == ApplyMsg::Kind::kCommand);
      CHECK(s.applied[i].index == LogIndex{i + 1});
      CHECK(s.applied[i].data == numbered("cmd", i + 1));
    }
    // Persist before reply: every follower's entries are in its storage.
    CHECK(s.storage->last_index() == LogIndex{20});
  }
  co_await c->stop();
}

TEST_CASE("a leader's commands commit and apply on every node, in order") {
  // Goal: start(), replication, advance_commit and the applier.
  auto loop = Loop::simulated({.seed = 7});
  Cluster c(3);
  loop->run(replicates_in_order(&c));
}

TEST_CASE("replication works when every storage write takes time") {
  // Goal: the asynchronous persistence paths (writes that suspend) keep the protocol going.
  auto loop = Loop::simulated({.seed = 8});
  Cluster c(3);
  for (auto& s : c.servers) s.storage->set_write_delay(3ms);
  loop->run(replicates_in_order(&c));
}

Task<void> survives_leader_crash(Cluster* c) {
  co_await c->start_all();
  const std::size_t l1 = co_await c->wait_leader();
  (void)c->servers[l1].node->start("a");
  CHECK(co_await c->wait_applied(1));
  co_await c->crash(l1);
  const std::size_t l2 = co_await c->wait_leader();
  CHECK(l2 != l1);
  (void)c->servers[l2].node->start("b");
  co_await sleep_for(1s);
  co_await c->start(l1);  // Restarts from its storage: term, vote and log come back.
  CHECK(c->servers[l1].node->log().last_index() == LogIndex{1});
  CHECK(co_await c->wait_applied(2));
  const auto& applied = c->servers[l1].applied;
  REQUIRE(applied.size() == 2);  // A restarted node re-applies from the start of its log.
  CHECK(applied[0].data == "a");
  CHECK(applied[1].data == "b");
  co_await c->stop();
}

TEST_CASE("a crashed leader is replaced, restarts from storage and catches up") {
  // Goal: crash/restart with MemStorage's copy semantics; a new leader commits.
  auto loop = Loop::simulated({.seed = 11});
  Cluster c(3);
  loop->run(survives_leader_crash(&c));
}

Task<void> installs_snapshot(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  const std::size_t lagging = (l + 1) % 3;
  c->net.disconnect(NodeId{static_cast<std::uint32_t>(lagging)});
  for (int i = 1; i <= 30; ++i)
    (void)c->servers[l].node->start(numbered("x", static_cast<std::size_t>(i)));
  co_await sleep_for(1s);
  // The service snapshots at 25 on the connected nodes; the leader's log loses 1..25.
  for (std::size_t i = 0; i < 3; ++i) {
    const LogIndex at{25};
    if (i != lagging) co_await c->servers[i].node->snapshot(at, "state@25");
  }
  CHECK(c->servers[l].node->log().snapshot_index() == LogIndex{25});
  CHECK(c->servers[l].storage->snapshot()->last_included_index == LogIndex{25});
  c->net.connect(NodeId{static_cast<std::uint32_t>(lagging)});
  CHECK(co_await c->wait_applied(30));
  const auto& applied = c->servers[lagging].applied;
  // It may have applied nothing before; then the snapshot, then 26..30 in order.
  REQUIRE(applied.size() == 6);
  CHECK(applied[0].kind == ApplyMsg::Kind::kSnapshot);
  CHECK(applied[0].index == LogIndex{25});
  CHECK(applied[0].snapshot == "state@25");
  for (std::size_t i = 1; i < 6; ++i) CHECK(applied[i].index == LogIndex{25 + i});
  CHECK(c->servers[lagging].node->log().snapshot_index() == LogIndex{25});
  co_await c->stop();
}

TEST_CASE("a follower behind the leader's snapshot gets it by InstallSnapshot") {
  // Goal: 2D — snapshot(), log trimming, InstallSnapshot, the snapshot on the apply stream.
  auto loop = Loop::simulated({.seed = 3});
  Cluster c(3);
  loop->run(installs_snapshot(&c));
}

// A follower down while the others take a snapshot at index 25 (of `bytes`) restarts and
// gets it from the leader, which keeps its term all along (heartbeats flow while chunks are
// out). Crashed rather than cut off: a cut-off node's rising term would depose the leader.
Task<void> installs_large_snapshot(Cluster* c, std::size_t bytes, Duration link_delay) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  const Term term = c->servers[l].node->current_term();
  const std::size_t lagging = (l + 1) % 3;
  co_await c->crash(lagging);
  for (int i = 1; i <= 30; ++i)
    (void)c->servers[l].node->start(numbered("x", static_cast<std::size_t>(i)));
  CHECK(co_await c->wait_applied(30));  // On the two running nodes.
  std::string state(bytes, 's');
  state.replace(0, 8, "state@25");
  for (std::size_t i = 0; i < 3; ++i) {
    if (i != lagging) co_await c->servers[i].node->snapshot(LogIndex{25}, state);
  }
  const NodeId leader_id{static_cast<std::uint32_t>(l)};
  const NodeId lagging_id{static_cast<std::uint32_t>(lagging)};
  c->net.set_link(leader_id, lagging_id, LinkFaults{link_delay, link_delay, 0});
  c->net.set_link(lagging_id, leader_id, LinkFaults{link_delay, link_delay, 0});
  co_await c->start(lagging);
  CHECK(co_await c->wait_applied(30));
  const auto& applied = c->servers[lagging].applied;
  REQUIRE(applied.size() == 6);
  CHECK(applied[0].kind == ApplyMsg::Kind::kSnapshot);
  CHECK(applied[0].index == LogIndex{25});
  CHECK(applied[0].snapshot == state);
  for (const auto& s : c->servers) CHECK(s.node->current_term() == term);
  CHECK(c->leader() == l);
  co_await c->stop();
}

TEST_CASE("a snapshot larger than a frame reaches a lagging follower, in chunks") {
  // Goal: no snapshot is too big to send (SimNetwork refuses requests above a frame, as a
  // real transport does) and sending it costs no election.
  auto loop = Loop::simulated({.seed = 3});
  Cluster c(3);
  loop->run(installs_large_snapshot(&c, (std::size_t{64} << 20) + 4096, Duration{0}));
}

// A follower in step with the leader loses its disk (restarts on empty storage) after the
// leader took a snapshot: its log now ends below what it acknowledged, and it gets the
// snapshot rather than being asked forever for entries after its old match.
Task<void> wiped_follower_catches_up(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  const Term term = c->servers[l].node->current_term();
  for (int i = 1; i <= 30; ++i)
    (void)c->servers[l].node->start(numbered("x", static_cast<std::size_t>(i)));
  CHECK(co_await c->wait_applied(30));  // On all three: the leader knows they match at 30.
  for (std::size_t i = 0; i < 3; ++i) co_await c->servers[i].node->snapshot(LogIndex{25}, "state@25");
  const std::size_t wiped = (l + 1) % 3;
  co_await c->crash(wiped);
  c->servers[wiped].storage = std::make_unique<MemStorage>();
  co_await c->start(wiped);
  CHECK(co_await c->wait_applied(30));
  const auto& applied = c->servers[wiped].applied;
  REQUIRE(applied.size() == 6);
  CHECK(applied[0].snapshot == "state@25");
  CHECK(c->servers[l].node->current_term() == term);
  co_await c->stop();
}

TEST_CASE("a follower restarted on empty storage gets the snapshot") {
  // Goal: the leader lowers its match index of a follower whose log ends below it (without
  // that, it kept asking for entries after the old match, and the follower never caught up).
  auto loop = Loop::simulated({.seed = 3});
  Cluster c(3);
  loop->run(wiped_follower_catches_up(&c));
}

// A snapshot whose bytes cannot be read (the leader's file gives EIO).
class UnreadableSnapshot final : public SnapshotData::Source {
 public:
  std::uint64_t size() const noexcept override { return 100; }
  std::uint32_t crc() const noexcept override { return 0; }
  void read(std::uint64_t, std::span<char>) const override {
    throw std::runtime_error("cannot read the snapshot: Input/output error");
  }
};

// The leader cannot read its snapshot for a follower behind it: it keeps sending that
// follower heartbeats (which keep it from campaigning), and never runs out of its
// requests in flight.
Task<void> unreadable_snapshot_keeps_heartbeats(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  const std::size_t lagging = (l + 1) % 3;
  co_await c->crash(lagging);
  for (int i = 1; i <= 30; ++i)
    (void)c->servers[l].node->start(numbered("x", static_cast<std::size_t>(i)));
  CHECK(co_await c->wait_applied(30));
  const SnapshotData unreadable(std::make_shared<UnreadableSnapshot>());
  co_await c->servers[l].node->snapshot(LogIndex{25}, unreadable);
  co_await c->start(lagging);
  co_await sleep_for(5s);  // Dozens of failed reads, each followed by a heartbeat.
  const NodeStatus status = c->servers[lagging].node->status();
  CHECK(status.role == Role::kFollower);
  CHECK(status.leader_id == NodeId{static_cast<std::uint32_t>(l)});
  co_await c->stop();
}

TEST_CASE("a leader that cannot read its snapshot keeps the follower behind it with heartbeats") {
  // Goal: the mutation "a failed read leaks a request in flight, and no heartbeat goes".
  auto loop = Loop::simulated({.seed = 3});
  Cluster c(3);
  loop->run(unreadable_snapshot_keeps_heartbeats(&c));
}

TEST_CASE("a snapshot that takes several election timeouts to send costs no election") {
  // Goal: heartbeats keep flowing while the chunks are out: 40 chunks over a 25 ms link
  // take 2 s, against an election timeout of 300-600 ms.
  auto loop = Loop::simulated({.seed = 3});
  Config config = Config::lab();
  config.snapshot_chunk_bytes = 16 * 1024;
  Cluster c(3, config);
  loop->run(installs_large_snapshot(&c, 40 * 16 * 1024, std::chrono::milliseconds(25)));
}

// A failed AppendEntries can come back at once (a dropped reply, a refused connection): the
// entries go again with the next heartbeat, not in a loop that never lets time pass. (Found
// by cluster_sim: a one-way link losing every reply spun the leader.) The tap stops a
// spinning leader so that the test fails rather than hangs.
Task<void> lost_replies_wait_for_a_heartbeat(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  const NodeId leader_id{static_cast<std::uint32_t>(l)};
  const NodeId follower{static_cast<std::uint32_t>((l + 1) % 3)};
  std::uint64_t requests = 0;
  c->net.set_tap([&](NodeId from, NodeId to, const Message& request, const Message* reply) {
    const auto* ae = std::get_if<AppendEntriesArgs>(&request);
    if (reply == nullptr && from == leader_id && to == follower && ae && !ae->entries.empty()) {
      if (++requests == 1000) c->servers[l].node->kill();
    }
  });
  c->net.set_link(follower, leader_id, LinkFaults{0ms, 0ms, 1000});  // Every reply lost.
  REQUIRE(c->servers[l].node->start("x").is_leader);
  co_await sleep_for(1s);
  CHECK(requests >= 5);   // It keeps trying...
  CHECK(requests <= 20);  // ...about once per heartbeat (100 ms).
  c->net.set_tap(nullptr);
  co_await c->stop();
}

TEST_CASE("entries whose replies are lost go again a heartbeat later, not in a busy loop") {
  auto loop = Loop::simulated({.seed = 5});
  Cluster c(3);
  c.net.set_long_delays(false);
  loop->run(lost_replies_wait_for_a_heartbeat(&c));
}

// A candidate whose log is behind cannot win, yet each of its RequestVotes raises the
// others' term. If stepping down to a new term restarted a follower's election timer, such a
// candidate with a faster clock would keep the cluster leaderless for ever (found by
// cluster_sim, on a node with a stale log and a fast clock). Here the test plays that
// candidate, node 2, asking every 200 ms, below the 300 ms minimum timeout.
// With check-quorum (§4.2.3) the storm is disregarded altogether: no term rises.
Task<void> hopeless_candidate_storm(Cluster* c) {
  const bool disregarded = c->config.check_quorum;
  co_await c->start(0);
  co_await c->start(1);
  const std::size_t l = co_await c->wait_leader();
  REQUIRE(c->servers[l].node->start("x").is_leader);  // Now node 2's empty log is behind.
  co_await sleep_for(500ms);
  REQUIRE(c->servers[(l + 1) % 2].node->log().last_index() == LogIndex{1});
  Scope asks;
  bool leader_during_storm = false;
  bool term_rose = false;
  Term storm_start;
  for (int round = 0; round < 25; ++round) {
    Term top;
    for (std::size_t i = 0; i < 2; ++i) top = std::max(top, c->servers[i].node->current_term());
    if (round == 0) storm_start = top;
    const RequestVoteArgs ask{Term{top.value + 1}, NodeId{2}, LogIndex{0}, Term{0}};
    for (std::size_t i = 0; i < 2; ++i) {
      asks.spawn([](Node* node, RequestVoteArgs args) -> Task<void> {
        (void)co_await node->handle(NodeId{2}, Message(args));
      }(c->servers[i].node.get(), ask));
    }
    for (int tick = 0; tick < 20; ++tick) {  // 200 ms, looking every 10 ms.
      co_await sleep_for(10ms);
      for (std::size_t i = 0; i < 2; ++i) {
        const Node& n = *c->servers[i].node;
        if (n.role() == Role::kLeader && n.current_term() > storm_start) leader_during_storm = true;
        if (n.current_term() > storm_start) term_rose = true;
      }
    }
  }
  co_await asks.join();
  if (disregarded) {
    CHECK_FALSE(term_rose);
    CHECK(c->leader() == l);
  } else {
    CHECK(leader_during_storm);
  }
  co_await c->stop();
}

TEST_CASE("a candidate that cannot win does not keep the others from electing a leader") {
  // Goal: the follower's timer rule (without check-quorum, whose lease turns the storm away);
  // then check-quorum's §4.2.3: RequestVotes within a leader's lease change nothing.
  for (const bool check_quorum : {false, true}) {
    CAPTURE(check_quorum);
    auto loop = Loop::simulated({.seed = 7});
    Config config = Config::lab();
    config.check_quorum = check_quorum;
    Cluster c(3, config);
    c.net.set_long_delays(false);
    loop->run(hopeless_candidate_storm(&c));
  }
}

// The leader counts itself toward a majority only for entries on its own disk: with its
// writes slow and one follower down, a command acknowledged by the other follower is on one
// disk of three, and must not commit until the leader's write completes.
Task<void> leader_counts_only_its_durable_entries(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  co_await c->crash((l + 1) % 3);
  const std::size_t follower = (l + 2) % 3;
  c->servers[l].storage->set_write_delay(3s);
  Node& leader = *c->servers[l].node;
  const StartResult started = leader.start("x");
  REQUIRE(started.is_leader);
  co_await sleep_for(1s);
  CHECK(c->servers[follower].node->log().last_index() == started.index);  // Acknowledged.
  CHECK(leader.commit_index() < started.index);  // But the leader's own write is not done.
  CHECK(leader.match_indexes()[l] < started.index);
  co_await sleep_for(3s);
  CHECK(leader.commit_index() == started.index);
  co_await c->stop();
}

TEST_CASE("a leader does not count its own entries toward commit before they are durable") {
  // Goal: the mutation "leader counts undurable entries" (self match = last log index).
  auto loop = Loop::simulated({.seed = 5});
  Cluster c(3);
  loop->run(leader_counts_only_its_durable_entries(&c));
}

Task<void> figure8(Cluster* c) {
  co_await c->start_all();
  const std::size_t l1 = co_await c->wait_leader();
  (void)c->servers[l1].node->start("a");
  CHECK(co_await c->wait_applied(1));
  // (a) The leader and one follower take x at index 2: not a majority, so not committed.
  const std::size_t f = (l1 + 1) % 5;
  std::vector<std::size_t> others;
  for (std::size_t i = 0; i < 5; ++i) {
    if (i != l1 && i != f) others.push_back(i);
  }
  c->isolate_all();
  c->connect(l1);
  c->connect(f);
  CHECK(c->servers[l1].node->start("x").index == LogIndex{2});
  co_await sleep_for(300ms);
  CHECK(c->servers[f].node->log().last_index() == LogIndex{2});
  // (b) The other three elect a leader of a later term, which takes y at index 2 alone.
  c->isolate_all();
  for (std::size_t i : others) c->connect(i);
  const Term t1 = c->servers[l1].node->current_term();
  const std::size_t l2 = co_await c->wait_leader_after(t1);
  c->isolate_all();
  CHECK(c->servers[l2].node->start("y").index == LogIndex{2});
  const Term t2 = c->servers[l2].node->current_term();
  std::vector<std::size_t> rest;
  for (std::size_t i : others) {
    if (i != l2) rest.push_back(i);
  }
  // (c) l1 or f leads again, later still, and copies x (of the old term) to a third node:
  // x is now on a majority, but no entry of the leader's own term is: nothing commits.
  c->connect(l1);
  c->connect(f);
  c->connect(rest[0]);
  const std::size_t l3 = co_await c->wait_leader_after(t2);
  CHECK((l3 == l1 || l3 == f));
  co_await sleep_for(1s);
  CHECK(c->servers[rest[0]].node->log().term_at(LogIndex{2}) == t1);
  for (std::size_t i = 0; i < 5; ++i) CHECK_FALSE(c->applied_at(i, 2).has_value());
  // (d) The leader of (b) returns with the two nodes that lack its term: it wins, overwrites
  // x with y, and commits y with an entry of its own term.
  c->isolate_all();
  c->connect(l2);
  c->connect(rest[0]);
  c->connect(rest[1]);
  const Term t3 = c->servers[l3].node->current_term();
  const std::size_t l4 = co_await c->wait_leader_after(t3);
  CHECK(l4 == l2);
  (void)c->servers[l4].node->start("z");
  co_await sleep_for(1s);
  for (std::size_t i : {l2, rest[0], rest[1]}) {
    CHECK(c->applied_at(i, 2) == std::optional<std::string>("y"));
    CHECK(c->applied_at(i, 3) == std::optional<std::string>("z"));
  }
  co_await c->stop();
}

TEST_CASE("Figure 8: an old-term entry on a majority does not commit until one of the term does") {
  // Goal: advance_commit counts only current-term entries, through the drivers; x, on a
  // majority in (c), is later overwritten, so committing it would have broken safety.
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    auto loop = Loop::simulated({.seed = seed});
    Cluster c(5);
    loop->run(figure8(&c));
  }
}

Task<void> vote_waits_for_storage(MemStorage* storage, NullEndpoint* rpc) {
  Scope scope;
  Node node(NodeId{0}, 3, *rpc, *storage, Config::lab(), RecoveredState{});
  scope.spawn(node.run());
  CHECK(rpc->served == &node);
  const RequestVoteArgs args{Term{5}, NodeId{2}, LogIndex{0}, Term{0}};
  const TimePoint asked = Loop::current().now();
  const NodeId candidate{2};
  const Message reply = co_await node.handle(candidate, args);
  // The reply left only once the vote was durable.
  CHECK(Loop::current().now() - asked >= 20ms);
  CHECK(storage->hard_state() == HardState{Term{5}, NodeId{2}});
  const auto* vote = std::get_if<RequestVoteReply>(&reply);
  REQUIRE(vote != nullptr);
  CHECK(vote->vote_granted);
  CHECK(vote->term == Term{5});
  // A second candidate of the same term is refused: one vote per term.
  const RequestVoteArgs other{Term{5}, NodeId{1}, LogIndex{0}, Term{0}};
  const NodeId second{1};
  const Message refused = co_await node.handle(second, other);
  CHECK_FALSE(std::get<RequestVoteReply>(refused).vote_granted);
  node.kill();
  CHECK(rpc->served == nullptr);
  co_await scope.join();
}

TEST_CASE("a vote is durable before it is granted") {
  // Goal: persist before reply, with a storage whose writes take 20 ms.
  auto loop = Loop::simulated({.seed = 1});
  MemStorage storage;
  storage.set_write_delay(20ms);
  NullEndpoint rpc(NodeId{0});
  loop->run(vote_waits_for_storage(&storage, &rpc));
}

Config without_pre_vote() {
  Config c = Config::lab();
  c.pre_vote = false;
  return c;
}

Task<void> candidate_steps_down(MemStorage* storage, NullEndpoint* rpc) {
  Scope scope;
  Node node(NodeId{0}, 3, *rpc, *storage, without_pre_vote(), RecoveredState{});
  scope.spawn(node.run());
  // No peer answers: the node stands for election over and over.
  co_await sleep_for(2s);
  CHECK(node.role() == Role::kCandidate);
  const Term term = node.current_term();
  CHECK(term >= Term{2});
  CHECK(storage->hard_state() == HardState{term, NodeId{0}});
  // A leader of a newer term: the candidacy is cancelled at once, in the handler.
  const AppendEntriesArgs append{Term{term.value + 3}, NodeId{1}, LogIndex{0}, Term{0}, {},
                                 LogIndex{0}};
  const NodeId leader{1};
  const Message reply = co_await node.handle(leader, append);
  CHECK(node.role() == Role::kFollower);
  CHECK(node.leader_id() == NodeId{1});
  CHECK(std::get<AppendEntriesReply>(reply).success);
  CHECK(storage->hard_state() == HardState{Term{term.value + 3}, kNoNode});
  node.kill();
  co_await scope.join();
}

TEST_CASE("a term change cancels the candidacy and the node follows the new leader") {
  // Goal: observe_term is the choke point; role scopes are cancelled synchronously.
  auto loop = Loop::simulated({.seed = 2});
  MemStorage storage;
  NullEndpoint rpc(NodeId{0});
  loop->run(candidate_steps_down(&storage, &rpc));
}

// --- pre-vote (Raft thesis §9.6) ---

Task<void> pre_candidate_keeps_its_term(MemStorage* storage, NullEndpoint* rpc) {
  Scope scope;
  Node node(NodeId{0}, 3, *rpc, *storage, Config::lab(), RecoveredState{});
  scope.spawn(node.run());
  // No peer answers: without pre-vote the node would stand over and over, raising its term.
  co_await sleep_for(3s);
  CHECK(rpc->calls > 0);
  CHECK(node.role() == Role::kPreCandidate);
  CHECK(node.current_term() == Term{0});
  CHECK(storage->hard_state() == HardState{});
  node.kill();
  co_await scope.join();
}

TEST_CASE("a pre-candidate no peer answers asks again and again, in the same term") {
  // Goal: the mutation "pre-vote raises the term" (the pre-candidacy must not be a candidacy).
  auto loop = Loop::simulated({.seed = 3});
  MemStorage storage;
  NullEndpoint rpc(NodeId{0});
  loop->run(pre_candidate_keeps_its_term(&storage, &rpc));
}

RequestVoteReply pre_vote_reply(const Message& m) { return std::get<RequestVoteReply>(m); }

Task<void> pre_vote_answers(MemStorage* storage, NullEndpoint* rpc) {
  Scope scope;
  Node node(NodeId{0}, 3, *rpc, *storage, Config::lab(), RecoveredState{});
  scope.spawn(node.run());
  const NodeId leader{1};
  const NodeId asker{2};
  const AppendEntriesArgs heartbeat{Term{4}, leader, LogIndex{0}, Term{0}, {}, LogIndex{0}};
  CHECK(std::get<AppendEntriesReply>(co_await node.handle(leader, heartbeat)).success);
  const RequestVoteArgs pre{Term{5}, asker, LogIndex{0}, Term{0}, true};
  // Within election_timeout_min of the leader's heartbeat: no.
  co_await sleep_for(100ms);
  RequestVoteReply r = pre_vote_reply(co_await node.handle(asker, pre));
  CHECK_FALSE(r.vote_granted);
  CHECK(r.term == Term{4});
  // Later (the heartbeats stopped): yes, but the term and the vote stay, and nothing is
  // written for it.
  co_await sleep_for(250ms);
  r = pre_vote_reply(co_await node.handle(asker, pre));
  CHECK(r.vote_granted);
  CHECK(r.term == Term{4});
  CHECK(node.current_term() == Term{4});
  CHECK(node.voted_for() == kNoNode);
  CHECK(storage->hard_state() == HardState{Term{4}, kNoNode});
  // Never for a term that is not newer, nor for a log behind ours.
  const RequestVoteArgs same_term{Term{4}, asker, LogIndex{0}, Term{0}, true};
  CHECK_FALSE(pre_vote_reply(co_await node.handle(asker, same_term)).vote_granted);
  const AppendEntriesArgs entry{Term{4},   leader, LogIndex{0}, Term{0}, {LogEntry{Term{4}, "x"}},
                                LogIndex{0}};
  CHECK(std::get<AppendEntriesReply>(co_await node.handle(leader, entry)).success);
  co_await sleep_for(350ms);
  CHECK_FALSE(pre_vote_reply(co_await node.handle(asker, pre)).vote_granted);
  node.kill();
  co_await scope.join();
}

TEST_CASE("a pre-vote is refused within a leader's lease, and changes nothing when granted") {
  auto loop = Loop::simulated({.seed = 4});
  MemStorage storage;
  NullEndpoint rpc(NodeId{0});
  loop->run(pre_vote_answers(&storage, &rpc));
}

struct Disruption {
  bool term_rose_alone = false;  // The isolated node's term went up.
  bool leader_deposed = false;   // The leader lost its term or role after the node came back.
};

Task<void> isolate_and_rejoin(Cluster* c, Disruption* out) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  const Term term = c->servers[l].node->current_term();
  const std::size_t away = (l + 1) % 3;
  c->net.disconnect(NodeId{static_cast<std::uint32_t>(away)});
  co_await sleep_for(5s);  // Many election timeouts alone.
  out->term_rose_alone = c->servers[away].node->current_term() != term;
  c->connect(away);
  co_await sleep_for(2s);
  const Node& leader = *c->servers[l].node;
  out->leader_deposed = leader.current_term() != term || !leader.state().is_leader;
  co_await c->stop();
}

TEST_CASE("a node back from a partition does not raise the leader's term") {
  // Goal: pre-vote end to end; the run without it shows the test can tell.
  for (const bool pre_vote : {true, false}) {
    CAPTURE(pre_vote);
    auto loop = Loop::simulated({.seed = 6});
    Config config = Config::lab();
    config.pre_vote = pre_vote;
    Cluster c(3, config);
    c.net.set_long_delays(false);
    Disruption d;
    loop->run(isolate_and_rejoin(&c, &d));
    CHECK(d.term_rose_alone == !pre_vote);
    CHECK(d.leader_deposed == !pre_vote);
  }
}

// --- check-quorum (Raft thesis §6.2) ---

// How long after being cut off from both followers the leader still led (nullopt: still
// leading 3 s later), and whether start() and read_index() then refuse at once.
struct StepDown {
  std::optional<Duration> led_for;
  bool refuses = false;
};

Task<void> isolated_leader(Cluster* c, StepDown* out) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  const Term term = leader.current_term();
  const TimePoint cut = Loop::current().now();
  c->net.partition({{NodeId{static_cast<std::uint32_t>(l)}},
                    {NodeId{static_cast<std::uint32_t>((l + 1) % 3)},
                     NodeId{static_cast<std::uint32_t>((l + 2) % 3)}}});
  while (leader.role() == Role::kLeader && Loop::current().now() - cut < 3s) {
    co_await sleep_for(10ms);
  }
  if (leader.role() != Role::kLeader) {
    out->led_for = Loop::current().now() - cut;
    CHECK(leader.current_term() == term);  // It steps down in its own term,
    CHECK(leader.leader_id() == kNoNode);  // knowing of no leader.
    const TimePoint asked = Loop::current().now();
    out->refuses = !leader.start("late").is_leader && !(co_await leader.read_index()) &&
                   Loop::current().now() == asked;
  }
  c->net.heal();
  co_await c->stop();
}

// A follower whose disk takes longer than an election timeout per write still answers
// heartbeats at once (they carry no entries while entries are on their way, and start at the
// match index), so check-quorum keeps its leader.
Task<void> slow_follower_disk_keeps_leader(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  const Term term = leader.current_term();
  co_await c->crash((l + 1) % 3);
  const std::size_t slow = (l + 2) % 3;
  c->servers[slow].storage->set_write_delay(800ms);
  for (int i = 0; i < 10; ++i) {
    (void)leader.start(numbered("w", static_cast<std::size_t>(i)));
    co_await sleep_for(200ms);
    CHECK(leader.state().is_leader);
  }
  CHECK(leader.current_term() == term);
  c->servers[slow].storage->set_write_delay(0ms);
  CHECK(co_await c->wait_applied(10));
  co_await c->stop();
}

TEST_CASE("a follower with a slow disk answers heartbeats at once, and its leader stays") {
  // Goal: heartbeats do not resend entries in flight (the follower would answer only once it
  // wrote them, and check-quorum would take a slow disk for a dead follower).
  auto loop = Loop::simulated({.seed = 12});
  Cluster c(3);
  c.net.set_long_delays(false);
  loop->run(slow_follower_disk_keeps_leader(&c));
}

TEST_CASE("an isolated leader steps down within an election timeout and refuses at once") {
  // Goal: check-quorum; the run without it shows the old leader leading on, unaware.
  for (const bool check_quorum : {true, false}) {
    CAPTURE(check_quorum);
    auto loop = Loop::simulated({.seed = 9});
    Config config = Config::lab();
    config.check_quorum = check_quorum;
    Cluster c(3, config);
    c.net.set_long_delays(false);
    StepDown d;
    loop->run(isolated_leader(&c, &d));
    if (check_quorum) {
      REQUIRE(d.led_for.has_value());
      // Its last replies came at most a heartbeat before the cut; it looks each heartbeat.
      CHECK(*d.led_for <= config.election_timeout_min + config.heartbeat_interval);
      CHECK(*d.led_for >= config.election_timeout_min - config.heartbeat_interval);
      CHECK(d.refuses);
    } else {
      CHECK_FALSE(d.led_for.has_value());
    }
  }
}

// --- leadership transfer (Raft thesis §3.10) ---

Task<void> transfer_to_follower(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  const Term term = leader.current_term();
  for (int i = 1; i <= 5; ++i) (void)leader.start(numbered("w", static_cast<std::size_t>(i)));
  const std::size_t target = (l + 2) % c->servers.size();
  // The target is a little behind: the transfer brings it up to date first.
  c->net.disconnect(NodeId{static_cast<std::uint32_t>(target)});
  (void)leader.start("w6");
  co_await sleep_for(50ms);
  c->connect(target);
  const TimePoint asked = Loop::current().now();
  Scope transfer;
  bool moved = false;
  transfer.spawn([](Node* n, NodeId t, bool* out) -> Task<void> {
    *out = co_await n->transfer_leadership(t) == TransferResult::kDone;
  }(&leader, NodeId{static_cast<std::uint32_t>(target)}, &moved));
  co_await sleep_for(1ms);
  CHECK(leader.transferring());
  CHECK_FALSE(leader.start("refused").is_leader);  // No new commands meanwhile.
  co_await transfer.join();
  CHECK(moved);
  const std::size_t now_leading = co_await c->wait_leader();
  CHECK(now_leading == target);
  const Node& next = *c->servers[target].node;
  CHECK(next.current_term() == Term{term.value + 1});  // No election beyond the one asked for.
  // Within a few round trips, not an election timeout.
  CHECK(Loop::current().now() - asked < c->config.election_timeout_min);
  CHECK(next.log().last_index() == LogIndex{6});
  CHECK(co_await c->wait_applied(6));
  co_await c->stop();
}

TEST_CASE("a leader hands its leadership to a follower, which wins at once") {
  // Goal: transfer end to end, with check-quorum on: the other voters heard from the leader
  // lately, and grant only because the election is a transfer's.
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    auto loop = Loop::simulated({.seed = seed});
    Cluster c(5);
    c.net.set_long_delays(false);
    loop->run(transfer_to_follower(&c));
  }
}

Task<void> transfer_abandoned(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  const Term term = leader.current_term();
  const std::size_t target = (l + 1) % 3;
  c->net.disconnect(NodeId{static_cast<std::uint32_t>(target)});
  (void)leader.start("x");  // The target cannot catch up.
  const TimePoint asked = Loop::current().now();
  CHECK(co_await leader.transfer_leadership(node_id(target)) == TransferResult::kFailed);
  const Duration took = Loop::current().now() - asked;
  CHECK(took >= c->config.election_timeout_min);
  CHECK(took < c->config.election_timeout_max);
  // It leads on in its term and takes commands again.
  CHECK(leader.state().is_leader);
  CHECK(leader.current_term() == term);
  CHECK_FALSE(leader.transferring());
  CHECK(leader.start("y").is_leader);
  // Nor can it hand over to itself, to no node, or twice at once.
  CHECK(co_await leader.transfer_leadership(node_id(l)) == TransferResult::kBadTarget);
  CHECK(co_await leader.transfer_leadership(NodeId{7}) == TransferResult::kBadTarget);
  // Left to choose, it passes over the follower that is down and hands over to the other.
  CHECK(co_await leader.transfer_leadership() == TransferResult::kDone);
  CHECK(c->servers[(l + 2) % 3].node->state().is_leader);
  c->connect(target);
  co_await c->stop();
}

TEST_CASE("a transfer that cannot complete is abandoned, and the leader takes commands again") {
  auto loop = Loop::simulated({.seed = 2});
  Cluster c(3);
  c.net.set_long_delays(false);
  loop->run(transfer_abandoned(&c));
}

// --- ReadIndex, the no-op on election, status for services ---

// The read results of one task: each read's invocation bound (the highest commit index any
// node had when it was invoked) and what it returned.
struct ReadRecord {
  LogIndex committed_at_invoke;
  std::optional<LogIndex> result;
};

LogIndex max_commit(const Cluster& c) {
  LogIndex m{0};
  for (const auto& s : c.servers) {
    if (s.node) m = std::max(m, s.node->commit_index());
  }
  return m;
}

Task<void> read_once(Cluster* c, Node* node, std::vector<ReadRecord>* out) {
  const LogIndex bound = max_commit(*c);
  const std::optional<LogIndex> r = co_await node->read_index();
  out->push_back(ReadRecord{bound, r});
}

// Linearizability of the returned index: a read must see every write committed (anywhere)
// before it was invoked.
void check_reads(const std::vector<ReadRecord>& reads) {
  for (const ReadRecord& r : reads) {
    if (r.result) CHECK(*r.result >= r.committed_at_invoke);
  }
}

// --- lease reads (Raft thesis §6.4.1) ---

Config with_lease_reads() {
  Config c = Config::lab();
  c.lease_reads = true;
  return c;
}

// Everything the followers send the leader is lost from now on (its own messages still go).
void deafen(Cluster* c, std::size_t l) {
  for (std::size_t i = 0; i < c->servers.size(); ++i) {
    if (i != l) c->net.set_link(node_id(i), node_id(l), LinkFaults{.loss_per_mille = 1000});
  }
}

Task<void> lease_runs_out(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  (void)leader.start("w");
  CHECK(co_await c->wait_applied(1));
  const std::uint64_t rpcs = c->net.total_count();
  CHECK(co_await leader.read_index() == std::optional<LogIndex>(LogIndex{1}));
  CHECK(leader.stats().lease_reads == 1);
  CHECK(c->net.total_count() == rpcs);  // No round.
  deafen(c, l);
  const TimePoint cut = Loop::current().now();
  CHECK(co_await leader.read_index() == std::optional<LogIndex>(LogIndex{1}));
  CHECK(leader.stats().lease_reads == 2);  // Within the lease: no reply needed.
  // The last answered request left at most a heartbeat before the cut; its lease is over a
  // heartbeat past election_timeout_min * (1 - drift). A read then needs a round, which fails.
  const Config& config = c->config;
  co_await sleep_until(cut + std::chrono::duration_cast<Duration>(
                                 config.election_timeout_min * (1.0 - config.clock_drift_max)) +
                       config.heartbeat_interval);
  CHECK_FALSE((co_await leader.read_index()).has_value());
  CHECK(leader.stats().lease_reads == 2);
  co_await c->stop();
}

// Replies take longer than the lease lasts: a lease counted from when each request left has
// always run out by the time its answer arrives, so no read is served by it.
Task<void> slow_answers_give_no_lease(Cluster* c, std::vector<ReadRecord>* reads) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  (void)leader.start("w");
  CHECK(co_await c->wait_applied(1));
  const Duration lease = std::chrono::duration_cast<Duration>(
      c->config.election_timeout_min * (1.0 - c->config.clock_drift_max));
  for (std::size_t i = 0; i < 3; ++i) {
    if (i != l) {
      c->net.set_link(node_id(i), node_id(l), LinkFaults{lease + 10ms, lease + 10ms, 0});
    }
  }
  co_await sleep_for(2 * lease);  // Past the leases of answers that came fast.
  const std::uint64_t before = leader.stats().lease_reads;
  for (int i = 0; i < 10; ++i) {
    co_await read_once(c, &leader, reads);
    co_await sleep_for(37ms);
  }
  CHECK(leader.state().is_leader);  // Check-quorum hears the answers, late as they are.
  CHECK(leader.stats().lease_reads == before);
  co_await c->stop();
}

TEST_CASE("a lease counts from when a request left, not from when its answer came") {
  // Goal: the mutations "the lease lasts three election timeouts" and "the lease starts at
  // the answer" (check-quorum alone would hide both).
  auto loop = Loop::simulated({.seed = 8});
  Config config = with_lease_reads();
  config.heartbeat_interval = 20ms;  // Check-quorum hears often enough through the delay.
  config.clock_drift_max = 0.5;      // A 150 ms lease: answers take 160 ms.
  Cluster c(3, config);
  c.net.set_long_delays(false);
  std::vector<ReadRecord> reads;
  loop->run(slow_answers_give_no_lease(&c, &reads));
  CHECK(reads.size() == 10);
  for (const ReadRecord& r : reads) CHECK(r.result.has_value());
  check_reads(reads);
}

TEST_CASE("a leader reads under its lease without a round, and not once the lease ran out") {
  // Goal: lease reads end to end; after the lease, a round.
  auto loop = Loop::simulated({.seed = 3});
  Cluster c(3, with_lease_reads());
  c.net.set_long_delays(false);
  loop->run(lease_runs_out(&c));
}

Task<void> transfer_voids_lease(Cluster* c, std::vector<ReadRecord>* reads) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  (void)leader.start("w");
  CHECK(co_await c->wait_applied(1));
  // The leader will not hear that the target won: its lease would still look valid.
  deafen(c, l);
  const std::size_t target = (l + 1) % 3;
  Scope tasks;
  tasks.spawn([](Node* n, NodeId t) -> Task<void> {
    (void)co_await n->transfer_leadership(t);
  }(&leader, node_id(target)));
  Node& next = *c->servers[target].node;
  while (!next.state().is_leader) co_await sleep_for(1ms);
  const StartResult w = next.start("after");
  while (next.commit_index() < w.index) co_await sleep_for(1ms);
  // The old leader, unaware, must not read by its lease: it would miss "after".
  co_await read_once(c, &leader, reads);
  co_await tasks.join();
  co_await c->stop();
}

TEST_CASE("a leader that began a transfer reads by its lease no more") {
  // Goal: the mutation "a transfer leaves the lease in force" (the target's election does not
  // wait for the lease to run out).
  auto loop = Loop::simulated({.seed = 5});
  Cluster c(3, with_lease_reads());
  c.net.set_long_delays(false);
  std::vector<ReadRecord> reads;
  loop->run(transfer_voids_lease(&c, &reads));
  REQUIRE(reads.size() == 1);
  check_reads(reads);
}

Task<void> restarted_node_holds_to_a_lease(MemStorage* storage, NullEndpoint* rpc) {
  Scope scope;
  Node node(NodeId{0}, 3, *rpc, *storage, with_lease_reads(), RecoveredState{});
  scope.spawn(node.run());
  const RequestVoteArgs vote{Term{5}, NodeId{2}, LogIndex{0}, Term{0}};
  // Just started: it may have heard from a leader before it stopped, so it votes for no one
  // for an election timeout (its term stays).
  RequestVoteReply r = std::get<RequestVoteReply>(co_await node.handle(NodeId{2}, vote));
  CHECK_FALSE(r.vote_granted);
  CHECK(node.current_term() == Term{0});
  co_await sleep_for(Config::lab().election_timeout_min);
  r = std::get<RequestVoteReply>(co_await node.handle(NodeId{2}, vote));
  CHECK(r.vote_granted);
  node.kill();
  co_await scope.join();
}

TEST_CASE("with lease reads a node that just started votes for no one for an election timeout") {
  // Goal: the mutation "a restart forgets the lease it was holding to".
  auto loop = Loop::simulated({.seed = 6});
  MemStorage storage;
  NullEndpoint rpc(NodeId{0});
  loop->run(restarted_node_holds_to_a_lease(&storage, &rpc));
}

Task<void> read_on_leader(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  for (int i = 1; i <= 3; ++i) (void)leader.start(numbered("w", static_cast<std::size_t>(i)));
  CHECK(co_await c->wait_applied(3));
  const std::uint64_t rpcs = c->net.total_count();
  const std::uint64_t rounds = leader.read_rounds();
  const std::optional<LogIndex> r = co_await leader.read_index();
  CHECK(r == std::optional<LogIndex>(LogIndex{3}));
  CHECK(leader.read_rounds() == rounds + 1);
  // The round was one AppendEntries to each follower (no heartbeat was due).
  CHECK(c->net.total_count() - rpcs == 2);
  // Followers do not serve reads.
  for (std::size_t i = 0; i < 3; ++i) {
    if (i != l) CHECK_FALSE((co_await c->servers[i].node->read_index()).has_value());
  }
  co_await c->stop();
}

TEST_CASE("read_index on a leader returns the commit index after one quorum round") {
  // Goal: ReadIndex end to end: record commit_index, confirm leadership, return it.
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    auto loop = Loop::simulated({.seed = seed});
    Cluster c(3);
    c.net.set_long_delays(false);
    loop->run(read_on_leader(&c));
  }
}

Task<void> read_waits_for_term_commit(Cluster* c, std::vector<ReadRecord>* reads) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  // No entry of this term has committed (lab config: no no-op): the read waits for one.
  Scope readers;
  readers.spawn(read_once(c, &leader, reads));
  co_await sleep_for(500ms);
  CHECK(reads->empty());
  (void)leader.start("w");
  co_await sleep_for(500ms);
  REQUIRE(reads->size() == 1);
  CHECK((*reads)[0].result == std::optional<LogIndex>(LogIndex{1}));
  co_await readers.join();
  co_await c->stop();
}

TEST_CASE("read_index waits until an entry of the leader's term commits") {
  // Goal: thesis §6.4 step 1: a new leader's commit index may lag; it is not served.
  auto loop = Loop::simulated({.seed = 4});
  Cluster c(3);
  std::vector<ReadRecord> reads;
  loop->run(read_waits_for_term_commit(&c, &reads));
}

Task<void> partitioned_leader_reads(Cluster* c, std::vector<ReadRecord>* old_reads,
                                    std::vector<ReadRecord>* new_reads) {
  co_await c->start_all();
  const std::size_t l1 = co_await c->wait_leader();
  (void)c->servers[l1].node->start("a");
  CHECK(co_await c->wait_applied(1));
  Node* old_leader = c->servers[l1].node.get();
  const Term t1 = old_leader->current_term();
  // Cut the old leader off with one follower (a minority); it still believes it leads.
  const std::size_t f = (l1 + 1) % 5;
  std::vector<NodeId> minority{NodeId{static_cast<std::uint32_t>(l1)},
                               NodeId{static_cast<std::uint32_t>(f)}};
  std::vector<NodeId> majority_side;
  for (std::uint32_t i = 0; i < 5; ++i) {
    if (i != l1 && i != f) majority_side.push_back(NodeId{i});
  }
  std::vector<std::vector<NodeId>> groups{minority, majority_side};
  c->net.partition(groups);
  Scope readers;
  // Reads on the old leader throughout, while the majority elects a leader and writes.
  for (int i = 0; i < 20; ++i) {
    readers.spawn(read_once(c, old_leader, old_reads));
    if (i == 5) {
      std::optional<std::size_t> l2;
      for (std::size_t j = 0; j < 5; ++j) {
        if (j != l1 && c->servers[j].node->state().is_leader) l2 = j;
      }
      if (l2) {
        for (int k = 0; k < 3; ++k) (void)c->servers[*l2].node->start(numbered("b", k));
      }
    }
    co_await sleep_for(100ms);
  }
  std::optional<std::size_t> l2;
  for (std::size_t j = 0; j < 5; ++j) {
    if (j != l1 && c->servers[j].node->state().is_leader) l2 = j;
  }
  REQUIRE(l2.has_value());
  CHECK(c->servers[*l2].node->current_term() > t1);
  (void)c->servers[*l2].node->start("c");
  co_await sleep_for(200ms);
  CHECK(c->servers[*l2].node->commit_index() > LogIndex{1});
  // The old leader still leads its term, but confirms nothing: every read says nullopt.
  CHECK(old_leader->state().is_leader);
  readers.spawn(read_once(c, old_leader, old_reads));
  readers.spawn(read_once(c, c->servers[*l2].node.get(), new_reads));
  co_await readers.join();
  for (const ReadRecord& r : *old_reads) CHECK_FALSE(r.result.has_value());
  REQUIRE(new_reads->size() == 1);
  CHECK(new_reads->front().result.has_value());
  check_reads(*old_reads);
  check_reads(*new_reads);
  c->net.heal();
  co_await c->stop();
}

TEST_CASE("a partitioned old leader never returns a read index; the new leader does") {
  // Goal: linearizable reads: a deposed leader that does not know it yet must not serve an
  // index below what the new leader has committed.
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    auto loop = Loop::simulated({.seed = seed});
    Config config = Config::lab();
    config.check_quorum = false;  // It would depose the old leader: here it must not know.
    Cluster c(5, config);
    c.net.set_long_delays(false);
    std::vector<ReadRecord> old_reads;
    std::vector<ReadRecord> new_reads;
    loop->run(partitioned_leader_reads(&c, &old_reads, &new_reads));
    CHECK(old_reads.size() == 21);
  }
}

Task<void> batched_reads(Cluster* c, std::vector<ReadRecord>* first,
                         std::vector<ReadRecord>* second) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  (void)leader.start("w");
  CHECK(co_await c->wait_applied(1));
  // Every message from the leader takes 10 ms: a round is in flight for a while.
  for (std::uint32_t i = 0; i < 3; ++i) {
    if (i != l) c->net.set_link(NodeId{static_cast<std::uint32_t>(l)}, NodeId{i},
                                LinkFaults{10ms, 10ms, 0});
  }
  co_await sleep_for(150ms);  // Past the heartbeats already in flight.
  const std::uint64_t rpcs = c->net.total_count();
  const std::uint64_t rounds = leader.read_rounds();
  Scope readers;
  for (int i = 0; i < 10; ++i) readers.spawn(read_once(c, &leader, first));
  co_await sleep_for(5ms);
  // These arrive while the first round is in flight: they wait for the next one.
  for (int i = 0; i < 10; ++i) readers.spawn(read_once(c, &leader, second));
  co_await readers.join();
  CHECK(leader.read_rounds() == rounds + 2);
  CHECK(c->net.total_count() - rpcs == 4);  // Two rounds of one AppendEntries per follower.
  REQUIRE(first->size() == 10);
  REQUIRE(second->size() == 10);
  for (const ReadRecord& r : *first) CHECK(r.result == std::optional<LogIndex>(LogIndex{1}));
  for (const ReadRecord& r : *second) CHECK(r.result == std::optional<LogIndex>(LogIndex{1}));
  co_await c->stop();
}

TEST_CASE("concurrent reads share one round; reads during a round wait for the next") {
  // Goal: ReadIndex batching, counted in rounds and in RPCs.
  auto loop = Loop::simulated({.seed = 5});
  // Heartbeats 1 s apart: none falls inside the 30 ms the reads take, so RPCs count rounds.
  Config config = Config::lab();
  config.heartbeat_interval = 1s;
  config.election_timeout_min = 3s;
  config.election_timeout_max = 6s;
  Cluster c(3, config);
  c.net.set_long_delays(false);
  std::vector<ReadRecord> first;
  std::vector<ReadRecord> second;
  loop->run(batched_reads(&c, &first, &second));
}

Task<void> noop_on_election(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  // The leader's empty command commits with no client: reads are served at once.
  CHECK(co_await c->wait_applied(1));
  for (const auto& s : c->servers) {
    REQUIRE(!s.applied.empty());
    CHECK(s.applied[0].index == LogIndex{1});
    CHECK(s.applied[0].data.empty());
    CHECK(s.applied[0].term == leader.current_term());
  }
  CHECK((co_await leader.read_index()) == std::optional<LogIndex>(LogIndex{1}));
  CHECK(leader.start("a").index == LogIndex{2});
  co_await c->stop();
}

TEST_CASE("with commit_noop_on_election a new leader commits an empty command") {
  // Goal: the option's effect, and that it is off in the lab preset.
  CHECK_FALSE(Config::lab().commit_noop_on_election);
  CHECK(Config::production().commit_noop_on_election);
  auto loop = Loop::simulated({.seed = 6});
  Config config = Config::lab();
  config.commit_noop_on_election = true;
  Cluster c(3, config);
  loop->run(noop_on_election(&c));
}

Task<void> watch_changes(Node* node, std::vector<NodeStatus>* seen) {
  for (std::uint64_t count = 0;;) {
    co_await node->wait_change(count);
    if (node->killed()) co_return;
    const NodeStatus s = node->status();
    seen->push_back(s);
    count = s.changes;
  }
}

Task<void> status_for_services(Cluster* c, std::vector<std::vector<NodeStatus>>* seen) {
  co_await c->start_all();
  Scope watchers;
  for (std::size_t i = 0; i < 3; ++i) watchers.spawn(watch_changes(c->servers[i].node.get(), &(*seen)[i]));
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  for (int i = 1; i <= 4; ++i) (void)leader.start(numbered("abc", static_cast<std::size_t>(i)));
  CHECK(co_await c->wait_applied(4));
  co_await sleep_for(200ms);  // Followers learn the commit index and ack everything.
  const std::vector<LogIndex> matches = leader.match_indexes();
  REQUIRE(matches.size() == 3);
  for (const LogIndex m : matches) CHECK(m == LogIndex{4});
  CHECK(leader.log_entries() == 4);
  CHECK(leader.log_bytes() == 16);
  for (std::size_t i = 0; i < 3; ++i) {
    if (i != l) CHECK(c->servers[i].node->match_indexes().empty());
  }
  co_await leader.snapshot(LogIndex{2}, "s");
  CHECK(leader.snapshot_index() == LogIndex{2});
  CHECK(leader.log_entries() == 2);
  CHECK(leader.log_bytes() == 8);
  // Each watcher saw its node's last change: the leader as leader, the others following it.
  for (std::size_t i = 0; i < 3; ++i) {
    REQUIRE(!(*seen)[i].empty());
    const NodeStatus last = (*seen)[i].back();
    CHECK(last.term == leader.current_term());
    CHECK(last.leader_id == NodeId{static_cast<std::uint32_t>(l)});
    CHECK(last.role == (i == l ? Role::kLeader : Role::kFollower));
    CHECK(last.changes == c->servers[i].node->change_count());
  }
  co_await c->stop();
  co_await watchers.join();  // kill() wakes them.
}

TEST_CASE("services hear of role, term and leader changes, and read match indexes and log size") {
  // Goal: the status API uraftd's INFO and logs use.
  auto loop = Loop::simulated({.seed = 9});
  Cluster c(3);
  std::vector<std::vector<NodeStatus>> seen(3);
  loop->run(status_for_services(&c, &seen));
}

Task<void> pipelines_appends(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  (void)leader.start("first");
  CHECK(co_await c->wait_applied(1));  // Both followers matched: the leader pipelines now.
  for (std::uint32_t i = 0; i < 3; ++i) {
    if (i != l) {
      c->net.set_link(NodeId{static_cast<std::uint32_t>(l)}, NodeId{i}, LinkFaults{20ms, 20ms, 0});
    }
  }
  const std::uint64_t sent = leader.stats().append_requests;
  for (int i = 0; i < 4; ++i) {
    (void)leader.start(numbered("p", static_cast<std::size_t>(i)));
    co_await sleep_for(1ms);
  }
  // Four requests per follower left before the first reply could come back (40 ms).
  CHECK(leader.stats().append_requests - sent == 8);
  CHECK(co_await c->wait_applied(5));
  co_await c->stop();
}

Task<void> commit_rides_along(Cluster* c) {
  co_await c->start_all();
  const std::size_t l = co_await c->wait_leader();
  Node& leader = *c->servers[l].node;
  (void)leader.start("a");
  CHECK(co_await c->wait_applied(1));
  co_await sleep_for(c->config.heartbeat_interval);  // Quiet: the next heartbeat is a while off.
  const std::uint64_t rpcs = c->net.total_count();
  const StartResult r = leader.start("b");
  while (leader.commit_index() < r.index) co_await sleep_for(1ms);
  // One AppendEntries to each follower carried the entry; no second one tells of its commit.
  CHECK(c->net.total_count() - rpcs == 2);
  co_await sleep_for(5ms);
  CHECK(c->net.total_count() - rpcs == 2);
  // The followers learn it with the next heartbeat, within one interval.
  co_await sleep_for(c->config.heartbeat_interval);
  for (const auto& s : c->servers) CHECK(s.node->commit_index() == r.index);
  co_await c->stop();
}

TEST_CASE("a new commit index rides on the next request, within a heartbeat interval") {
  // Goal: coalesced commit notifications: no empty AppendEntries after every payload one.
  auto loop = Loop::simulated({.seed = 4});
  Cluster c(3);
  c.net.set_long_delays(false);
  loop->run(commit_rides_along(&c));
}

TEST_CASE("a leader pipelines AppendEntries to a matching follower, within its window") {
  // Goal: Config::append_window: new entries go out without waiting for earlier replies.
  auto loop = Loop::simulated({.seed = 12});
  Config config = Config::lab();
  config.append_window = 4;
  Cluster c(3, config);
  c.net.set_long_delays(false);
  loop->run(pipelines_appends(&c));
}

TEST_CASE("pipelined replication stays correct under loss and reordering") {
  // Goal: the pipelining paths (fall back on loss or rejection) keep logs identical.
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    auto loop = Loop::simulated({.seed = seed});
    Config config = Config::lab();
    config.append_window = 8;
    Cluster c(3, config);
    c.net.set_reliable(false);
    c.net.set_long_reordering(true);
    loop->run(replicates_in_order(&c));
  }
}

NodeView restart_view(std::uint64_t instance, std::uint64_t term, NodeId vote, const RaftLog& log,
                      std::uint64_t durable_term, NodeId durable_vote) {
  return NodeView{NodeId{0}, instance, Term{term}, vote, false, &log, LogIndex{0}, LogIndex{0},
                  Term{durable_term}, durable_vote};
}

TEST_CASE("across a restart only durable terms and votes must survive") {
  // Goal: the invariant checker accepts storage that loses unsynced writes at a crash
  // (nothing depending on them was sent) and still catches durable state going back.
  const RaftLog log;
  ClusterInvariants inv(3, 42);
  inv.on_start(NodeId{0}, 1, LogIndex{0});
  // In memory: term 5, voted for 1; durable: term 4, no vote.
  const std::vector<NodeView> before{restart_view(1, 5, NodeId{1}, log, 4, kNoNode)};
  inv.check(before);
  // Restarted at term 4, then a vote in term 5 for another candidate: both legal.
  inv.on_start(NodeId{0}, 2, LogIndex{0});
  const std::vector<NodeView> restarted{restart_view(2, 4, kNoNode, log, 4, kNoNode)};
  inv.check(restarted);
  const std::vector<NodeView> revoted{restart_view(2, 5, NodeId{2}, log, 5, NodeId{2})};
  inv.check(revoted);
  // A restart below a durable term is a violation.
  inv.on_start(NodeId{0}, 3, LogIndex{0});
  const std::vector<NodeView> back{restart_view(3, 4, kNoNode, log, 4, kNoNode)};
  CHECK_THROWS_WITH_AS(inv.check(back), doctest::Contains("went back from term 5 to 4"),
                       InvariantViolation);
  // With the restored hard state given at start: checks go on from it.
  ClusterInvariants inv2(3, 42);
  inv2.on_start(NodeId{0}, 1, LogIndex{0});
  inv2.check(before);
  inv2.on_start(NodeId{0}, 2, LogIndex{0}, HardState{Term{4}, kNoNode});
  inv2.check(restarted);
  CHECK_THROWS_AS(inv2.on_start(NodeId{0}, 3, LogIndex{0}, HardState{Term{3}, kNoNode}),
                  InvariantViolation);
}

}  // namespace
}  // namespace uraft
