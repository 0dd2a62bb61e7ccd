// ClusterInvariants: each safety property, violated on purpose in a hand-built cluster history,
// must be reported (with the seed); a correct history must pass.
#include "raft/invariants.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace uraft {
namespace {

// A log holding one entry per term in `terms`, commands named by index and term.
RaftLog log_of(const std::vector<std::uint64_t>& terms) {
  RaftLog log;
  std::vector<LogEntry> entries;
  for (std::size_t i = 0; i < terms.size(); ++i) {
    entries.push_back(
        LogEntry{Term{terms[i]}, std::to_string(i + 1) + "@" + std::to_string(terms[i])});
  }
  log.append(entries);
  return log;
}

NodeView view(std::uint32_t id, std::uint64_t term, bool leader, const RaftLog& log,
              std::uint64_t commit, NodeId voted_for = kNoNode) {
  return NodeView{NodeId{id}, 1,    Term{term},       voted_for,
                  leader,     &log, LogIndex{commit}, LogIndex{0}};
}

ClusterInvariants started(std::size_t n) {
  ClusterInvariants inv(n, 42);
  for (std::uint32_t i = 0; i < n; ++i) inv.on_start(NodeId{i}, 1, LogIndex{0});
  return inv;
}

TEST_CASE("a correct history passes every check") {
  // Goal: no false alarms on an ordinary run: leader, followers catching up, a new term.
  ClusterInvariants inv = started(3);
  const RaftLog a = log_of({1, 1, 2});
  const RaftLog b = log_of({1, 1});
  const RaftLog c = log_of({1});
  const std::vector<NodeView> now{view(0, 2, true, a, 2), view(1, 2, false, b, 2),
                                  view(2, 2, false, c, 1)};
  inv.check(now);
  const RaftLog b2 = log_of({1, 1, 2, 3});
  const std::vector<NodeView> later{view(0, 3, false, a, 2), view(1, 3, true, b2, 2)};
  inv.check(later);
  CHECK(inv.checks() == 2);
}

TEST_CASE("two leaders in one term are reported, even at different times") {
  // Goal: Election Safety is checked across time, not only among simultaneous leaders.
  ClusterInvariants inv = started(3);
  const RaftLog l = log_of({});
  const std::vector<NodeView> first{view(0, 4, true, l, 0)};
  inv.check(first);
  const std::vector<NodeView> second{view(1, 4, true, l, 0)};
  CHECK_THROWS_WITH_AS(inv.check(second), doctest::Contains("term 4 has two leaders"),
                       InvariantViolation);
}

TEST_CASE("a committed entry overwritten later (Figure 8) is reported with the seed") {
  // Goal: the Figure 8 anomaly — an old-term entry counted as committed, then replaced.
  ClusterInvariants inv = started(5);
  const RaftLog s1 = log_of({1, 2});  // Index 2 from term 2, replicated to a majority...
  const std::vector<NodeView> first{view(0, 4, true, s1, 2)};  // ...and wrongly committed.
  inv.check(first);
  const RaftLog s5 = log_of({1, 3});  // Term 3's leader overwrites index 2.
  const std::vector<NodeView> second{view(4, 5, false, s5, 2)};
  CHECK_THROWS_WITH_AS(inv.check(second), doctest::Contains("seed 42"), InvariantViolation);
}

TEST_CASE("a leader lacking a committed entry is reported") {
  // Goal: Leader Completeness for every leader of a later term.
  ClusterInvariants inv = started(3);
  const RaftLog a = log_of({1, 1});
  const std::vector<NodeView> first{view(0, 1, false, a, 2)};
  inv.check(first);
  const RaftLog b = log_of({1});
  const std::vector<NodeView> second{view(1, 2, true, b, 1)};
  CHECK_THROWS_WITH_AS(inv.check(second), doctest::Contains("lacks committed entry 2"),
                       InvariantViolation);
}

TEST_CASE("logs that agree on a later entry but differ before it are reported") {
  // Goal: Log Matching, on uncommitted entries.
  ClusterInvariants inv = started(2);
  RaftLog a = log_of({1, 2, 3});
  RaftLog b;
  const std::vector<LogEntry> entries{{Term{1}, "1@1"}, {Term{2}, "other"}, {Term{3}, "3@3"}};
  b.append(entries);
  const std::vector<NodeView> now{view(0, 3, false, a, 0), view(1, 3, false, b, 0)};
  CHECK_THROWS_WITH_AS(inv.check(now), doctest::Contains("differ at 2"), InvariantViolation);
}

TEST_CASE("a second vote in the same term, or a term going back, is reported") {
  // Goal: the persistent state's deltas, across restarts of a node.
  ClusterInvariants inv = started(3);
  const RaftLog l = log_of({});
  const std::vector<NodeView> voted{view(0, 5, false, l, 0, NodeId{1})};
  inv.check(voted);
  const std::vector<NodeView> revoted{view(0, 5, false, l, 0, NodeId{2})};
  CHECK_THROWS_WITH_AS(inv.check(revoted), doctest::Contains("voted for 1 and then 2"),
                       InvariantViolation);
  ClusterInvariants inv2 = started(3);
  inv2.check(voted);
  const std::vector<NodeView> back{view(0, 4, false, l, 0)};
  CHECK_THROWS_AS(inv2.check(back), InvariantViolation);
}

TEST_CASE("apply streams: gaps and different commands at one index are reported") {
  // Goal: State Machine Safety and strictly consecutive applies; a snapshot may skip ahead.
  ClusterInvariants inv = started(2);
  inv.on_apply(NodeId{0}, 1, ApplyMsg{ApplyMsg::Kind::kCommand, LogIndex{1}, Term{1}, "x"});
  inv.on_apply(NodeId{0}, 1, ApplyMsg{ApplyMsg::Kind::kSnapshot, LogIndex{9}, Term{1}, "s"});
  inv.on_apply(NodeId{0}, 1, ApplyMsg{ApplyMsg::Kind::kCommand, LogIndex{10}, Term{1}, "y"});
  CHECK_THROWS_WITH_AS(
      inv.on_apply(NodeId{0}, 1, ApplyMsg{ApplyMsg::Kind::kCommand, LogIndex{12}, Term{1}, "z"}),
      doctest::Contains("consecutive"), InvariantViolation);
  CHECK_THROWS_WITH_AS(
      inv.on_apply(NodeId{1}, 1, ApplyMsg{ApplyMsg::Kind::kCommand, LogIndex{1}, Term{1}, "not x"}),
      doctest::Contains("different command"), InvariantViolation);
  // A killed instance's late message is not held against the new one.
  inv.on_start(NodeId{1}, 2, LogIndex{0});
  inv.on_apply(NodeId{1}, 1, ApplyMsg{ApplyMsg::Kind::kCommand, LogIndex{7}, Term{1}, "late"});
}

}  // namespace
}  // namespace uraft
