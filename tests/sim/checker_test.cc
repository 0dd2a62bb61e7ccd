// The simulator's checkers, each fed a history or a trace that breaks it (and one that does
// not): a checker that cannot fail proves nothing.
#include <doctest/doctest.h>

#include "tests/sim/cluster.h"
#include "tests/sim/history.h"
#include "tests/sim/state_checker.h"
#include "tests/sim/wire_checker.h"

namespace uraft::sim {
namespace {

Op op(OpKind kind, std::string key, std::string arg, std::optional<std::string> out,
      std::uint64_t call, std::uint64_t ret, bool indeterminate = false) {
  Op o;
  o.kind = kind;
  o.key = std::move(key);
  o.arg = std::move(arg);
  o.out = std::move(out);
  o.call = call;
  o.ret = ret;
  o.indeterminate = indeterminate;
  return o;
}

TEST_CASE("linearizability: sequential register histories pass and contradictions fail") {
  std::vector<Op> h = {
      op(OpKind::kSet, "k", "a", "OK", 1, 2),   op(OpKind::kGet, "k", "", "=a", 3, 4),
      op(OpKind::kAppend, "k", "b", "2", 5, 6), op(OpKind::kGet, "k", "", "=ab", 7, 8),
      op(OpKind::kIncr, "k", "", "ERR", 9, 10), op(OpKind::kDel, "k", "", "1", 11, 12),
      op(OpKind::kIncr, "k", "", "1", 13, 14),  op(OpKind::kIncr, "k", "", "2", 15, 16)};
  CHECK(check_linearizable(h).ok);

  SUBCASE("a stale read after an acknowledged write") {
    h.push_back(op(OpKind::kGet, "k", "", "=ab", 17, 18));
    const LinearizabilityResult r = check_linearizable(h);
    CHECK_FALSE(r.ok);
    CHECK(r.key == "k");
    CHECK(r.explanation.find("GET k -> =ab") != std::string::npos);
  }
  SUBCASE("an acknowledged write lost") {
    h.push_back(op(OpKind::kSet, "k", "x", "OK", 17, 18));
    h.push_back(op(OpKind::kGet, "k", "", "nil", 19, 20));
    CHECK_FALSE(check_linearizable(h).ok);
  }
  SUBCASE("a write applied twice") {
    h.push_back(op(OpKind::kAppend, "k", "z", "2", 17, 18));  // "2" -> "2z".
    CHECK(check_linearizable(h).ok);
    h.push_back(op(OpKind::kAppend, "k", "z", "4", 19, 20));  // Applied twice: "2zzz".
    CHECK_FALSE(check_linearizable(h).ok);
  }
  SUBCASE("keys are checked apart") {
    h.push_back(op(OpKind::kGet, "other", "", "nil", 17, 18));
    CHECK(check_linearizable(h).ok);
  }
}

TEST_CASE(
    "linearizability: concurrent operations may take effect in either order, not outside their "
    "span") {
  // Two overlapping SETs; reads after both may see either, but all later reads agree.
  std::vector<Op> h = {
      op(OpKind::kSet, "k", "a", "OK", 1, 4), op(OpKind::kSet, "k", "b", "OK", 2, 3),
      op(OpKind::kGet, "k", "", "=a", 5, 6), op(OpKind::kGet, "k", "", "=a", 7, 8)};
  CHECK(check_linearizable(h).ok);
  h[2].out = "=b";
  h[3].out = "=b";
  CHECK(check_linearizable(h).ok);
  h[3].out = "=a";  // b, then a again: no order explains it.
  CHECK_FALSE(check_linearizable(h).ok);
  // A read that ends before a write begins cannot see it.
  std::vector<Op> early = {op(OpKind::kGet, "k", "", "=a", 1, 2),
                           op(OpKind::kSet, "k", "a", "OK", 3, 4)};
  CHECK_FALSE(check_linearizable(early).ok);
}

TEST_CASE(
    "linearizability: an indeterminate write may happen at any time after its call, or never") {
  std::vector<Op> h = {
      op(OpKind::kSet, "k", "a", std::nullopt, 1, 0, true), op(OpKind::kGet, "k", "", "nil", 2, 3),
      op(OpKind::kGet, "k", "", "=a", 10, 11), op(OpKind::kGet, "k", "", "=a", 12, 13)};
  CHECK(check_linearizable(h).ok);
  std::vector<Op> never = {op(OpKind::kSet, "k", "a", std::nullopt, 1, 0, true),
                           op(OpKind::kGet, "k", "", "nil", 2, 3)};
  CHECK(check_linearizable(never).ok);
  // But not before it was sent.
  std::vector<Op> before = {op(OpKind::kGet, "k", "", "=a", 1, 2),
                            op(OpKind::kSet, "k", "a", std::nullopt, 3, 0, true)};
  CHECK_FALSE(check_linearizable(before).ok);
  // And once seen, it does not un-happen.
  h.push_back(op(OpKind::kGet, "k", "", "nil", 14, 15));
  CHECK_FALSE(check_linearizable(h).ok);
}

const NodeId n0{0}, n1{1}, n2{2};

AppendEntriesArgs append(Term term, NodeId leader, LogIndex prev, Term prev_term,
                         std::vector<Term> terms) {
  AppendEntriesArgs a{term, leader, prev, prev_term, {}, LogIndex{0}};
  for (Term t : terms) a.entries.push_back(LogEntry{t, "x"});
  return a;
}

void ack(WireChecker& w, NodeId leader, NodeId follower, const AppendEntriesArgs& a) {
  w.on_message(leader, follower, a, nullptr);
  const Message reply = AppendEntriesReply{
      a.term,      true,        Term{0},
      LogIndex{0}, LogIndex{0}, LogIndex{a.prev_log_index.value + a.entries.size()}};
  w.on_message(leader, follower, a, &reply);
}

void grant(WireChecker& w, NodeId candidate, NodeId voter, Term term) {
  const Message request = RequestVoteArgs{term, candidate, LogIndex{0}, Term{0}};
  const Message reply = RequestVoteReply{term, true};
  w.on_message(candidate, voter, request, &reply);
}

RecoveredState recovered(Term term, NodeId vote, std::vector<Term> terms) {
  RecoveredState r;
  r.hard_state = HardState{term, vote};
  for (Term t : terms) r.entries.push_back(LogEntry{t, "x"});
  return r;
}

TEST_CASE("wire: Election Safety sees two leaders of one term") {
  WireChecker w(3);
  w.on_message(n0, n1, append(Term{2}, n0, LogIndex{0}, Term{0}, {}), nullptr);
  w.on_message(n0, n2, append(Term{2}, n0, LogIndex{0}, Term{0}, {}), nullptr);
  w.on_message(n1, n2, append(Term{3}, n1, LogIndex{0}, Term{0}, {}), nullptr);
  CHECK(w.violations().empty());
  w.on_message(n2, n0, append(Term{3}, n2, LogIndex{0}, Term{0}, {}), nullptr);
  REQUIRE(w.violations().size() == 1);
  CHECK(w.violations()[0].find("Election Safety") != std::string::npos);
}

TEST_CASE("wire: one vote per term, and the vote survives a restart") {
  WireChecker w(3);
  grant(w, n1, n0, Term{4});
  grant(w, n1, n0, Term{4});  // Asked again: the same vote.
  CHECK(w.violations().empty());
  SUBCASE("a second candidate in the same term") {
    grant(w, n2, n0, Term{4});
    REQUIRE(w.violations().size() == 1);
    CHECK(w.violations()[0].find("one vote per term") != std::string::npos);
  }
  SUBCASE("a restart that forgot the vote") {
    w.on_restart(n0, recovered(Term{4}, kNoNode, {}));
    REQUIRE(w.violations().size() == 1);
    CHECK(w.violations()[0].find("without its vote") != std::string::npos);
  }
  SUBCASE("a restart that forgot the term") {
    w.on_restart(n0, recovered(Term{3}, kNoNode, {}));
    REQUIRE(w.violations().size() == 1);
    CHECK(w.violations()[0].find("had replied in term 4") != std::string::npos);
  }
  SUBCASE("a restart that kept it, or moved on") {
    w.on_restart(n0, recovered(Term{4}, n1, {}));
    w.on_restart(n0, recovered(Term{5}, kNoNode, {}));
    CHECK(w.violations().empty());
  }
}

TEST_CASE("wire: acknowledged entries survive a restart unless a newer term replaced them") {
  WireChecker w(3);
  ack(w, n0, n1, append(Term{1}, n0, LogIndex{0}, Term{0}, {Term{1}, Term{1}, Term{1}}));
  SUBCASE("kept") {
    w.on_restart(n1, recovered(Term{1}, kNoNode, {Term{1}, Term{1}, Term{1}}));
    CHECK(w.violations().empty());
  }
  SUBCASE("the last one lost") {
    w.on_restart(n1, recovered(Term{1}, kNoNode, {Term{1}, Term{1}}));
    REQUIRE(w.violations().size() == 1);
    CHECK(w.violations()[0].find("acknowledged at index 3") != std::string::npos);
  }
  SUBCASE("replaced by a newer leader's entry, written before the crash") {
    w.on_restart(n1, recovered(Term{2}, kNoNode, {Term{1}, Term{2}}));
    CHECK(w.violations().empty());
  }
  SUBCASE("covered by a snapshot") {
    RecoveredState r = recovered(Term{1}, kNoNode, {});
    r.snapshot = SnapshotRecord{LogIndex{3}, Term{1}, "state"};
    w.on_restart(n1, r);
    CHECK(w.violations().empty());
  }
  SUBCASE("a follower cut its log on a newer leader's entries: the promise follows the cut") {
    ack(w, n2, n1, append(Term{2}, n2, LogIndex{1}, Term{1}, {Term{2}}));
    w.on_restart(n1, recovered(Term{2}, kNoNode, {Term{1}, Term{2}}));
    CHECK(w.violations().empty());
  }
}

TEST_CASE("wire: a committed entry is never replaced by a later leader") {
  WireChecker w(3);
  const AppendEntriesArgs a = append(Term{1}, n0, LogIndex{0}, Term{0}, {Term{1}});
  ack(w, n0, n1, a);
  ack(w, n0, n2, a);  // Both followers: committed.
  CHECK(w.committed_seen() == 1);
  // The deposed leader of term 1 may still resend it; a new leader of term 2 must agree.
  w.on_message(n0, n1, a, nullptr);
  w.on_message(n1, n2, append(Term{2}, n1, LogIndex{0}, Term{0}, {Term{1}, Term{2}}), nullptr);
  CHECK(w.violations().empty());
  w.on_message(n2, n0, append(Term{3}, n2, LogIndex{0}, Term{0}, {Term{3}}), nullptr);
  REQUIRE(w.violations().size() == 1);
  CHECK(w.violations()[0].find("committed entry lost") != std::string::npos);
}

TEST_CASE("wire: an old term's entry on a majority is not committed (Figure 8)") {
  WireChecker w(3);
  // Node 0 led term 2 and put (1, t2) on node 1 only; node 2 led term 3 meanwhile. Node 0,
  // leader again in term 4, puts (1, t2) on node 2 too: a majority, but not committed.
  ack(w, n0, n1, append(Term{2}, n0, LogIndex{0}, Term{0}, {Term{2}}));
  w.on_message(n2, n1, append(Term{3}, n2, LogIndex{0}, Term{0}, {Term{3}}), nullptr);
  ack(w, n0, n2, append(Term{4}, n0, LogIndex{0}, Term{0}, {Term{2}}));
  CHECK(w.committed_seen() == 0);
  // So node 2, leader of term 5 with its term-3 entry, may replace it.
  w.on_message(n2, n1, append(Term{5}, n2, LogIndex{0}, Term{0}, {Term{3}}), nullptr);
  CHECK(w.violations().empty());
}

TEST_CASE("state: equal applied indexes need equal stores; the applied index never goes back") {
  StateChecker s;
  s.observe(0, 1, LogIndex{5}, 111);
  s.observe(1, 2, LogIndex{5}, 111);  // Another node, same index, same store.
  s.observe(0, 1, LogIndex{7}, 222);
  s.observe(0, 3, LogIndex{4}, 444);  // Restarted (a new instance) from an older snapshot.
  CHECK(s.violations().empty());
  s.observe(2, 4, LogIndex{5}, 999);
  REQUIRE(s.violations().size() == 1);
  CHECK(
      s.violations()[0].find("State Machine Safety: node 2 and node 0 differ at applied index 5") !=
      std::string::npos);
  s.observe(0, 3, LogIndex{3}, 333);  // Same instance as at 4.
  REQUIRE(s.violations().size() == 2);
  CHECK(s.violations()[1].find("applied index went back from 4 to 3") != std::string::npos);
}

TEST_CASE("liveness: a bound no cluster can meet is reported") {
  SimOptions o;
  o.seed = 3;
  o.duration = std::chrono::seconds(2);
  o.liveness_bound = Duration::zero();
  const SimResult r = run_simulation(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.violations[0].find("liveness: no write succeeded") != std::string::npos);
  // And with a fair bound the same seed passes.
  o.liveness_bound = std::chrono::seconds(10);
  CHECK(run_simulation(o).ok());
}

}  // namespace
}  // namespace uraft::sim
