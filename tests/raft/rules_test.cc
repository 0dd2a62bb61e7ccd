#include "raft/rules.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "raft/quorum.h"
#include "tests/raft/log_fixtures.h"

namespace uraft::test {
namespace {

constexpr std::size_t kBatchBytesMax = 1 << 20;  // Tests want whole suffixes in one message.

// The AppendEntries a leader sends to a follower whose next_index is `next`.
AppendEntriesArgs append_args(const RaftLog& leader, Term term, LogIndex next,
                              LogIndex leader_commit = 0_index) {
  const LogIndex prev{next.value - 1};
  return AppendEntriesArgs{
      .term = term,
      .leader_id = NodeId{0},
      .prev_log_index = prev,
      .prev_log_term = *leader.term_at(prev),
      .entries = leader.slice(next, LogIndex{leader.last_index().value + 1}, kBatchBytesMax),
      .leader_commit = leader_commit};
}

// A follower in current_term handling args: decide, then carry the decision out.
AppendEntriesReply receive(RaftLog& log, LogIndex& commit_index, Term current_term,
                           const AppendEntriesArgs& args) {
  const AppendDecision decision = decide_append(log, current_term, commit_index, args);
  carry_out(log, decision, args);
  commit_index = decision.commit_index;
  return decision.reply;
}

RequestVoteArgs vote_args(Term term, NodeId candidate, Term last_log_term,
                          LogIndex last_log_index) {
  return RequestVoteArgs{.term = term,
                         .candidate_id = candidate,
                         .last_log_index = last_log_index,
                         .last_log_term = last_log_term};
}

// ---- Figure 2, Rules for All Servers, 2: a newer term converts to follower. ----

TEST_CASE("observe_term adopts a newer term and steps down, nothing else") {
  // Goal: the one choke point for terms: only a strictly newer term changes anything.
  const TermObservation newer = observe_term(3_term, 5_term);
  CHECK(newer.step_down);
  CHECK(newer.new_term == 5_term);
  const TermObservation same = observe_term(5_term, 5_term);
  CHECK_FALSE(same.step_down);
  CHECK(same.new_term == 5_term);
  const TermObservation older = observe_term(5_term, 2_term);
  CHECK_FALSE(older.step_down);
  CHECK(older.new_term == 5_term);
}

// ---- Figure 2, RequestVote receiver, 1-2, and §5.4.1 (election restriction). ----

TEST_CASE("RequestVote 1: a candidate from an older term gets no vote") {
  // Goal: reply false if term < currentTerm, even with a perfect log and a free vote.
  CHECK_FALSE(
      decide_vote(5_term, kNoNode, log_of({1}), vote_args(4_term, NodeId{1}, 9_term, 9_index))
          .grant);
}

TEST_CASE("§5.4.1: up-to-date compares last terms first, then lengths") {
  // Goal: "If the logs have last entries with different terms, then the log with the later
  // term is more up-to-date. If the logs end with the same term, then whichever log is longer
  // is more up-to-date."
  const RaftLog log = log_of({1, 1, 3, 3});  // Last term 3, last index 4.
  struct Case {
    Term last_term;
    LogIndex last_index;
    bool grant;
  };
  const Case cases[] = {
      {4_term, 1_index, true},   // Later last term, although shorter.
      {3_term, 5_index, true},   // Same last term, longer.
      {3_term, 4_index, true},   // Same last term, same length: "at least as".
      {3_term, 3_index, false},  // Same last term, shorter.
      {2_term, 9_index, false},  // Earlier last term, although longer.
      {0_term, 0_index, false},  // Empty log.
  };
  for (const Case& c : cases) {
    CAPTURE(c.last_term);
    CAPTURE(c.last_index);
    CHECK(decide_vote(5_term, kNoNode, log, vote_args(5_term, NodeId{1}, c.last_term, c.last_index))
              .grant == c.grant);
  }
  CHECK(
      decide_vote(1_term, kNoNode, RaftLog(), vote_args(1_term, NodeId{1}, 0_term, 0_index)).grant);
}

TEST_CASE("RequestVote 2: one vote per term, repeatable for the same candidate") {
  // Goal: votedFor null or candidateId: a second candidate in the term is refused, a
  // retransmitted request from the chosen one is granted again.
  const RaftLog log = log_of({1});
  const RequestVoteArgs from_1 = vote_args(2_term, NodeId{1}, 1_term, 1_index);
  const RequestVoteArgs from_2 = vote_args(2_term, NodeId{2}, 1_term, 1_index);
  REQUIRE(decide_vote(2_term, kNoNode, log, from_1).grant);
  NodeId voted_for = from_1.candidate_id;  // Persisted by the driver before replying.
  CHECK(decide_vote(2_term, voted_for, log, from_1).grant);
  CHECK_FALSE(decide_vote(2_term, voted_for, log, from_2).grant);
  // A newer term clears the vote (observe_term's step_down), so node 2 can win term 3.
  const RequestVoteArgs next_term = vote_args(3_term, NodeId{2}, 1_term, 1_index);
  REQUIRE(observe_term(2_term, next_term.term).step_down);
  voted_for = kNoNode;
  CHECK(decide_vote(3_term, voted_for, log, next_term).grant);
}

TEST_CASE("§9.6 pre-vote: a newer term, an up-to-date log, and no leader heard of lately") {
  // Goal: the three conditions of a pre-vote grant, each one alone enough to refuse. A vote
  // cast in the receiver's term does not matter: the pre-vote is about a later term.
  const RaftLog log = log_of({1, 2});
  RequestVoteArgs pre = vote_args(4_term, NodeId{1}, 2_term, 2_index);
  pre.pre_vote = true;
  CHECK(decide_pre_vote(3_term, log, pre, false).grant);
  CHECK_FALSE(decide_pre_vote(3_term, log, pre, true).grant);  // A leader was heard lately.
  CHECK_FALSE(decide_pre_vote(4_term, log, pre, false).grant);  // Not a newer term.
  RequestVoteArgs behind = vote_args(4_term, NodeId{1}, 2_term, 1_index);
  behind.pre_vote = true;
  CHECK_FALSE(decide_pre_vote(3_term, log, behind, false).grant);  // Its log is behind.
}

TEST_CASE("property: decide_vote matches a lexicographic reference") {
  // Goal: grant iff same term, vote free or already this candidate's, and (term, index) of
  // the candidate's last entry >= the receiver's.
  std::mt19937_64 rng(11);
  for (int run = 0; run < 20000; ++run) {
    const std::vector<std::uint64_t> terms = random_terms(rng, 1, 1, 6);
    const RaftLog log = log_of(terms, upto(rng, terms.size()));
    const Term current{std::max<std::uint64_t>(log.last_term().value, 1) + upto(rng, 2)};
    const RequestVoteArgs args = vote_args(Term{current.value - upto(rng, 1)}, NodeId{1},
                                           Term{upto(rng, 5)}, LogIndex{upto(rng, 8)});
    const NodeId voted_for = std::vector{kNoNode, NodeId{1}, NodeId{2}}[upto(rng, 2)];
    const bool expected = args.term == current && voted_for != NodeId{2} &&
                          std::pair(args.last_log_term, args.last_log_index) >=
                              std::pair(log.last_term(), log.last_index());
    REQUIRE(decide_vote(current, voted_for, log, args).grant == expected);
  }
}

// ---- Figure 2, AppendEntries receiver, 1-5. ----

TEST_CASE("AppendEntries 1: a request from an older term is rejected and changes nothing") {
  // Goal: reply false if term < currentTerm; the rejection is inert when carried out.
  RaftLog log = log_of({1, 2});
  LogIndex commit = 1_index;
  const AppendEntriesArgs args = append_args(log_of({1, 1, 1}), 1_term, 2_index, 3_index);
  const AppendEntriesReply reply = receive(log, commit, 2_term, args);
  CHECK_FALSE(reply.success);
  CHECK(reply.term == 2_term);
  CHECK(terms_of(log) == std::vector<std::uint64_t>{0, 1, 2});
  CHECK(commit == 1_index);
}

TEST_CASE("AppendEntries 2: no entry at prev_log_index is rejected with the log length") {
  // Goal: the follower's log is too short: conflict_term 0 and log_length = last + 1.
  const RaftLog log = log_of({1, 1});
  const AppendEntriesArgs args = append_args(log_of({1, 1, 2, 2, 2}), 2_term, 5_index);
  const AppendDecision d = decide_append(log, 2_term, 0_index, args);
  CHECK_FALSE(d.reply.success);
  CHECK(d.reply.conflict_term == 0_term);
  CHECK(d.reply.log_length == 3_index);
  CHECK(d.reply.conflict_index == 3_index);
  CHECK_FALSE(d.truncate_from);
  CHECK(d.append_from == args.entries.size());
}

TEST_CASE("AppendEntries 2: a term mismatch at prev_log_index names the term and its first index") {
  // Goal: conflict_term is the follower's term at prev, conflict_index its first index there.
  const RaftLog log = log_of({1, 3, 3, 3});
  const AppendEntriesArgs args = append_args(log_of({1, 2, 2, 2, 4}), 4_term, 5_index);
  const AppendDecision d = decide_append(log, 4_term, 0_index, args);
  CHECK_FALSE(d.reply.success);
  CHECK(d.reply.conflict_term == 3_term);
  CHECK(d.reply.conflict_index == 2_index);
  CHECK(d.reply.log_length == 5_index);
}

TEST_CASE("AppendEntries 3-4: a conflict truncates from the first differing entry, then appends") {
  // Goal: delete the existing entry and all that follow it; append entries not in the log.
  RaftLog log = log_of({1, 1, 2, 2});
  LogIndex commit = 1_index;
  const RaftLog leader = log_of({1, 1, 3, 3, 3});
  const AppendEntriesArgs args = append_args(leader, 3_term, 2_index);
  const AppendDecision d = decide_append(log, 3_term, commit, args);
  CHECK(d.reply.success);
  CHECK(d.truncate_from == 3_index);
  CHECK(d.append_from == 1);  // Index 2 is already there with the same term.
  CHECK(d.reply.match_index == 5_index);
  carry_out(log, d, args);
  CHECK(terms_of(log) == terms_of(leader));
}

TEST_CASE("AppendEntries 3: a stale request never truncates a longer matching suffix") {
  // Goal: a reordered, older AppendEntries whose entries all match is a no-op on the log:
  // truncating there would erase entries the leader may already count as replicated.
  const RaftLog leader = log_of({1, 2, 2, 2, 2});
  RaftLog log = leader;
  LogIndex commit = 2_index;
  const AppendEntriesArgs stale = append_args(log_of({1, 2, 2}), 2_term, 2_index, 1_index);
  const AppendDecision d = decide_append(log, 2_term, commit, stale);
  CHECK(d.reply.success);
  CHECK_FALSE(d.truncate_from);
  CHECK(d.append_from == stale.entries.size());
  CHECK(d.reply.match_index == 3_index);
  receive(log, commit, 2_term, stale);
  CHECK(terms_of(log) == terms_of(leader));
  CHECK(commit == 2_index);
}

TEST_CASE("AppendEntries 4: a heartbeat appends nothing and still acknowledges prev") {
  // Goal: an empty AppendEntries that matches at prev succeeds with match_index = prev.
  const RaftLog log = log_of({1, 2, 2});
  const AppendEntriesArgs heartbeat = append_args(log, 2_term, 4_index, 3_index);
  const AppendDecision d = decide_append(log, 2_term, 0_index, heartbeat);
  CHECK(d.reply.success);
  CHECK(d.reply.match_index == 3_index);
  CHECK(d.commit_index == 3_index);
}

TEST_CASE("AppendEntries 5: commit index = min(leaderCommit, last new entry), never lower") {
  // Goal: the follower commits only what it holds from this leader, and a stale request
  // (older leader_commit or fewer entries) never moves the commit index back.
  const RaftLog leader = log_of({1, 1, 1, 1, 1, 1});
  RaftLog log = log_of({1, 1});
  LogIndex commit = 0_index;
  AppendEntriesArgs args = append_args(leader, 1_term, 3_index, 6_index);
  args.entries.resize(2);  // Indices 3..4 only.
  receive(log, commit, 1_term, args);
  CHECK(commit == 4_index);  // leader_commit is 6, but the last new entry is 4.
  receive(log, commit, 1_term, append_args(leader, 1_term, 5_index, 5_index));
  CHECK(commit == 5_index);
  receive(log, commit, 1_term, append_args(leader, 1_term, 2_index, 2_index));
  CHECK(commit == 5_index);
}

TEST_CASE("prev_log_index below the snapshot: covered entries are skipped, the rest checked") {
  // Goal: entries at or below the base are committed; the follower appends only what is
  // beyond its log and checks consistency at the base instead of at prev_log_index.
  const RaftLog leader = log_of({1, 1, 2, 2, 2, 3, 3});
  RaftLog log = log_of({1, 1, 2, 2, 2, 3}, 4);  // Base (4, 2); entries 5..6.
  LogIndex commit = 4_index;
  const AppendEntriesArgs args = append_args(leader, 3_term, 2_index, 7_index);
  const AppendDecision d = decide_append(log, 3_term, commit, args);
  CHECK(d.reply.success);
  CHECK(d.append_from == 5);  // Indices 2..6 are there; 7 is new.
  CHECK_FALSE(d.truncate_from);
  CHECK(d.reply.match_index == 7_index);
  carry_out(log, d, args);
  CHECK(terms_of(log) == std::vector<std::uint64_t>{2, 2, 3, 3});
}

TEST_CASE("prev_log_index below the snapshot: entries that all lie below the base are acked") {
  // Goal: a very stale AppendEntries is a successful no-op, with match_index = its last entry.
  const RaftLog log = log_of({1, 1, 2, 2, 2}, 4);
  AppendEntriesArgs args = append_args(log_of({1, 1, 2, 2, 2}), 2_term, 2_index, 3_index);
  args.entries.resize(1);  // Index 2 only.
  const AppendDecision d = decide_append(log, 2_term, 4_index, args);
  CHECK(d.reply.success);
  CHECK(d.reply.match_index == 2_index);
  CHECK(d.append_from == 1);
  CHECK(d.commit_index == 4_index);
}

TEST_CASE("prev_log_index below the snapshot: a disagreement at the base is a rejection") {
  // Goal: wire input never reaches an assertion: an entry for the base with another term is
  // rejected with hints like any other mismatch.
  const RaftLog log = log_of({1, 1, 2, 2}, 3);
  const AppendEntriesArgs args = append_args(log_of({1, 1, 1, 3}), 3_term, 2_index);
  const AppendDecision d = decide_append(log, 3_term, 3_index, args);
  CHECK_FALSE(d.reply.success);
  CHECK(d.reply.conflict_term == 2_term);
  CHECK(d.reply.conflict_index == 3_index);
}

TEST_CASE("is_well_formed: entry terms never decrease and never pass the leader's term") {
  // Goal: the driver can drop a malformed request before it reaches the rules.
  AppendEntriesArgs args = append_args(log_of({1, 2, 2, 3}), 3_term, 2_index);
  CHECK(is_well_formed(args));
  args.prev_log_term = 3_term;
  CHECK_FALSE(is_well_formed(args));
  args = append_args(log_of({1, 2, 2, 3}), 2_term, 2_index);
  CHECK_FALSE(is_well_formed(args));
  args.term = 3_term;
  args.entries = entries_from(2, {3, 2});
  CHECK_FALSE(is_well_formed(args));
}

// The reference: Figure 2's receiver, transcribed on a full vector of terms (index 0 = 0).
struct ReferenceFollower {
  std::vector<std::uint64_t> terms{0};
  std::uint64_t commit = 0;

  bool append(const AppendEntriesArgs& args) {
    const std::uint64_t prev = args.prev_log_index.value;
    if (prev >= terms.size() || terms[prev] != args.prev_log_term.value) return false;
    for (std::size_t i = 0; i < args.entries.size(); ++i) {
      const std::uint64_t index = prev + 1 + i;
      if (index < terms.size() && terms[index] != args.entries[i].term.value) terms.resize(index);
      if (index == terms.size()) terms.push_back(args.entries[i].term.value);
    }
    const std::uint64_t last_new = prev + args.entries.size();
    commit = std::max(commit, std::min(args.leader_commit.value, last_new));
    return true;
  }
};

// A leader's log and a follower's that share a prefix and then diverge. Leader terms are
// even and the divergent follower terms odd, so (index, term) pairs never collide and the
// Log Matching Property holds as in a real cluster.
struct Divergence {
  std::vector<std::uint64_t> leader;
  std::vector<std::uint64_t> follower;
  std::uint64_t shared = 0;
  Term term;  // The leader's current term, newer than every entry.
};

Divergence random_divergence(std::mt19937_64& rng) {
  Divergence d;
  d.leader = random_terms(rng, 2, 2, 20);
  d.shared = upto(rng, d.leader.size());
  d.follower.assign(d.leader.begin(), d.leader.begin() + static_cast<std::ptrdiff_t>(d.shared));
  const std::vector<std::uint64_t> suffix =
      random_terms(rng, (d.shared > 0 ? d.leader[d.shared - 1] : 0) + 1, 2, 8);
  d.follower.insert(d.follower.end(), suffix.begin(), suffix.end());
  const std::uint64_t newest =
      std::max(d.leader.empty() ? 0 : d.leader.back(), d.follower.empty() ? 0 : d.follower.back());
  d.term = Term{newest + 1 + upto(rng, 1)};
  return d;
}

// How many leading entries of `log` (from index 1) match `leader`; entries at or below the
// base count as matching, since the tests compact only shared, committed prefixes.
std::uint64_t matching_prefix(const RaftLog& log, const RaftLog& leader) {
  std::uint64_t i = log.snapshot_index().value;
  while (i < log.last_index().value &&
         log.term_at(LogIndex{i + 1}) == leader.term_at(LogIndex{i + 1}))
    ++i;
  return i;
}

TEST_CASE("property: decide_append matches Figure 2 on random, reordered, stale requests") {
  // Goal: with a snapshot base and requests in any order (stale ones included), the follower
  // ends exactly where the paper's receiver would, its hints describe its log, its matching
  // prefix never shrinks and its commit index never drops.
  std::mt19937_64 rng(2024);
  for (int run = 0; run < 3000; ++run) {
    const Divergence div = random_divergence(rng);
    const RaftLog leader = log_of(div.leader);
    const std::uint64_t leader_commit = upto(rng, div.leader.size());
    ReferenceFollower ref{.terms = {0}, .commit = upto(rng, std::min(div.shared, leader_commit))};
    ref.terms.insert(ref.terms.end(), div.follower.begin(), div.follower.end());
    RaftLog log = log_of(div.follower, upto(rng, ref.commit));
    const LogIndex base = log.snapshot_index();
    LogIndex commit{ref.commit};
    for (int step = 0; step < 8; ++step) {
      const std::uint64_t prev = upto(rng, div.leader.size());
      AppendEntriesArgs args =
          append_args(leader, div.term, LogIndex{prev + 1}, LogIndex{upto(rng, leader_commit)});
      args.entries.resize(upto(rng, args.entries.size()));
      const bool stale_term = upto(rng, 7) == 0;
      const Term current = stale_term ? Term{div.term.value + 1} : div.term;
      const std::uint64_t matched_before = matching_prefix(log, leader);

      const AppendEntriesReply reply = receive(log, commit, current, args);
      const bool ref_success = !stale_term && ref.append(args);
      REQUIRE(reply.success == ref_success);
      REQUIRE(log.snapshot_index() == base);
      REQUIRE(terms_of(log) ==
              std::vector(ref.terms.begin() + static_cast<std::ptrdiff_t>(base.value),
                          ref.terms.end()));
      REQUIRE(commit == LogIndex{ref.commit});
      REQUIRE(matching_prefix(log, leader) >= matched_before);
      REQUIRE(commit.value <= matching_prefix(log, leader));
      if (reply.success) REQUIRE(reply.match_index == LogIndex{prev + args.entries.size()});
      if (ref_success || stale_term) continue;
      REQUIRE(reply.log_length == LogIndex{ref.terms.size()});
      if (prev >= ref.terms.size()) {
        REQUIRE(reply.conflict_term == 0_term);
        continue;
      }
      REQUIRE(reply.conflict_term == Term{ref.terms[prev]});
      const auto first =
          std::find(ref.terms.begin(), ref.terms.end(), ref.terms[prev]) - ref.terms.begin();
      REQUIRE(reply.conflict_index == LogIndex{std::max<std::uint64_t>(first, base.value)});
    }
  }
}

// ---- Fast backtracking (lab 2B guidance: conflict term, conflict index, log length). ----

// The leader sends from `next` on, then from next_index_after_reject until the follower
// accepts; returns the number of round trips.
int replicate(const RaftLog& leader, Term term, LogIndex next, RaftLog& follower) {
  LogIndex commit = follower.snapshot_index();
  for (int round = 1; round <= 100; ++round) {
    const AppendEntriesReply reply =
        receive(follower, commit, term, append_args(leader, term, next));
    if (reply.success) return round;
    next = next_index_after_reject(leader, 0_index, reply);
  }
  FAIL("the leader never found a matching index");
  return 0;
}

TEST_CASE("backtracking: each of the lab's three cases costs one rejection") {
  // Goal: leader S2 = [4 6 6 6] sends prev_log_index 3; whatever the follower S1 holds, its
  // hints point next_index straight at index 2, and the next AppendEntries succeeds.
  struct Case {
    const char* rule;
    std::vector<std::uint64_t> follower;
    Term conflict_term;
    LogIndex conflict_index;
  };
  const Case cases[] = {
      {"1: conflict term the leader lacks -> conflict_index", {4, 5, 5}, 5_term, 2_index},
      {"2: conflict term the leader has -> its last entry of it + 1", {4, 4, 4}, 4_term, 1_index},
      {"3: no entry at prev -> log_length", {4}, 0_term, 2_index},
  };
  const RaftLog leader = log_of({4, 6, 6, 6});
  for (const Case& c : cases) {
    CAPTURE(c.rule);
    RaftLog follower = log_of(c.follower);
    const AppendDecision d =
        decide_append(follower, 6_term, 0_index, append_args(leader, 6_term, 4_index));
    CHECK(d.reply.conflict_term == c.conflict_term);
    CHECK(d.reply.conflict_index == c.conflict_index);
    CHECK(next_index_after_reject(leader, 0_index, d.reply) == 2_index);
    CHECK(replicate(leader, 6_term, 4_index, follower) == 2);
    CHECK(terms_of(follower) == terms_of(leader));
  }
}

TEST_CASE("backtracking stays within match_index + 1 .. leader's last + 1") {
  // Goal: hints are wire input: an old or odd reply never backs up over known matches nor
  // points past the leader's log.
  const RaftLog leader = log_of({1, 1, 2});
  AppendEntriesReply reply;
  reply.term = 2_term;
  CHECK(next_index_after_reject(leader, 0_index, reply) == 1_index);  // All hints zero.
  reply.log_length = 9_index;
  CHECK(next_index_after_reject(leader, 0_index, reply) == 4_index);
  reply.conflict_term = 7_term;
  reply.conflict_index = 1_index;
  CHECK(next_index_after_reject(leader, 2_index, reply) == 3_index);
}

TEST_CASE("property: backtracking converges in one round trip per conflicting term") {
  // Goal: from next = last + 1, the leader reaches the divergence point skipping whole terms,
  // and the follower then holds the leader's whole log. (A longer follower may keep extra
  // entries past it: receiver 3 removes only conflicts, and commit never reaches them.)
  std::mt19937_64 rng(99);
  for (int run = 0; run < 3000; ++run) {
    const Divergence div = random_divergence(rng);
    const RaftLog leader = log_of(div.leader);
    RaftLog follower = log_of(div.follower, upto(rng, div.shared));
    const std::set<std::uint64_t> follower_terms(
        div.follower.begin() + static_cast<std::ptrdiff_t>(div.shared), div.follower.end());
    const std::set<std::uint64_t> leader_terms(div.leader.begin(), div.leader.end());
    const int rounds =
        replicate(leader, div.term, LogIndex{leader.last_index().value + 1}, follower);
    CAPTURE(run);
    REQUIRE(rounds <= static_cast<int>(follower_terms.size() + leader_terms.size()) + 2);
    REQUIRE(matching_prefix(follower, leader) == leader.last_index().value);
  }
}

// ---- Figure 2, Leaders, 4, and §5.4.2 (committing entries from previous terms). ----

TEST_CASE("advance_commit commits the quorum index when it is from the current term") {
  // Goal: N > commitIndex, a majority of matchIndex[i] >= N, log[N].term == currentTerm.
  const RaftLog log = log_of({1, 2, 2, 2});
  const std::vector<LogIndex> match{4_index, 3_index, 1_index};
  CHECK(advance_commit(log, 2_term, match, 1_index) == 3_index);
}

TEST_CASE("Figure 8: an old-term entry on a majority is not committed by counting") {
  // Goal: (c) S1 leads term 4 and has put index 2 (term 2) on S1..S3; committing it would be
  // unsafe, since (d) S5 ([1 3]) can still win S2..S4's votes and overwrite it. Once an entry
  // of term 4 is on a majority, (e), it commits and index 2 with it.
  const RaftLog s1 = log_of({1, 2, 4});
  CHECK(advance_commit(s1, 4_term, std::vector{3_index, 2_index, 2_index, 1_index, 1_index},
                       1_index) == 1_index);
  const RaftLog s5 = log_of({1, 3});
  const RequestVoteArgs s5_asks = vote_args(5_term, NodeId{4}, s5.last_term(), s5.last_index());
  CHECK(decide_vote(5_term, kNoNode, log_of({1, 2}), s5_asks).grant);  // S2 and S3.
  CHECK(decide_vote(5_term, kNoNode, log_of({1}), s5_asks).grant);     // S4.
  CHECK(advance_commit(s1, 4_term, std::vector{3_index, 3_index, 3_index, 1_index, 1_index},
                       1_index) == 3_index);
}

TEST_CASE("advance_commit never decreases the commit index") {
  // Goal: match indexes reported below the commit index (a new leader) leave it in place.
  const RaftLog log = log_of({1, 1, 1, 1, 1});
  CHECK(advance_commit(log, 1_term, std::vector{5_index, 2_index, 2_index}, 4_index) == 4_index);
}

TEST_CASE("property: advance_commit matches a scan for the largest committable N") {
  // Goal: compare with Figure 2's sentence read literally: the largest N with a majority at or
  // above it and log[N].term == currentTerm, else the old commit index.
  std::mt19937_64 rng(8);
  for (int run = 0; run < 20000; ++run) {
    const std::vector<std::uint64_t> terms = random_terms(rng, 1, 1, 12);
    const std::uint64_t commit = upto(rng, terms.size());
    const RaftLog log = log_of(terms, upto(rng, commit));
    const Term current{log.last_term().value + upto(rng, 1)};
    std::vector<LogIndex> match{log.last_index()};  // The leader's own.
    for (std::uint64_t n = upto(rng, 6); n > 0; --n)
      match.push_back(LogIndex{upto(rng, terms.size())});
    std::uint64_t expected = commit;
    for (std::uint64_t n = terms.size(); n > commit; --n) {
      const auto holders =
          std::count_if(match.begin(), match.end(), [n](LogIndex m) { return m.value >= n; });
      if (static_cast<std::size_t>(holders) >= majority(match.size()) &&
          terms[n - 1] == current.value) {
        expected = n;
        break;
      }
    }
    REQUIRE(advance_commit(log, current, match, LogIndex{commit}) == LogIndex{expected});
  }
}

// ---- Figure 13, InstallSnapshot receiver, 1 and 6-7. ----

InstallSnapshotArgs snapshot_args(Term term, LogIndex last_included_index,
                                  Term last_included_term) {
  return InstallSnapshotArgs{.term = term,
                             .leader_id = NodeId{0},
                             .last_included_index = last_included_index,
                             .last_included_term = last_included_term,
                             .offset = 0,
                             .data = "state",
                             .done = true};
}

TEST_CASE("InstallSnapshot 1: a snapshot from an older term is ignored") {
  // Goal: reply immediately if term < currentTerm.
  CHECK(decide_install_snapshot(log_of({1}), 3_term, 0_index,
                                snapshot_args(2_term, 5_index, 2_term)) == SnapshotAction::kIgnore);
}

TEST_CASE("InstallSnapshot: a snapshot at or below the commit index is ignored") {
  // Goal: lab 2D: installing what is already committed would move the state machine back.
  const RaftLog log = log_of({1, 1, 2, 2});
  CHECK(decide_install_snapshot(log, 2_term, 3_index, snapshot_args(2_term, 3_index, 2_term)) ==
        SnapshotAction::kIgnore);
  CHECK(decide_install_snapshot(log, 2_term, 3_index, snapshot_args(2_term, 2_index, 1_term)) ==
        SnapshotAction::kIgnore);
}

TEST_CASE("InstallSnapshot 6: a matching entry keeps the log after it") {
  // Goal: if an entry has the snapshot's last index and term, retain the entries following it.
  RaftLog log = log_of({1, 1, 2, 2, 2});
  const InstallSnapshotArgs args = snapshot_args(2_term, 3_index, 2_term);
  REQUIRE(decide_install_snapshot(log, 2_term, 1_index, args) == SnapshotAction::kKeepSuffix);
  log.compact_prefix(args.last_included_index);
  CHECK(terms_of(log) == std::vector<std::uint64_t>{2, 2, 2});
}

TEST_CASE("InstallSnapshot 7: otherwise the whole log is discarded") {
  // Goal: a snapshot past the log's end, or disagreeing with it, replaces the log.
  const RaftLog log = log_of({1, 1, 2}, 1);
  CHECK(decide_install_snapshot(log, 3_term, 1_index, snapshot_args(3_term, 5_index, 3_term)) ==
        SnapshotAction::kReplaceLog);
  CHECK(decide_install_snapshot(log, 3_term, 1_index, snapshot_args(3_term, 3_index, 3_term)) ==
        SnapshotAction::kReplaceLog);
}

}  // namespace
}  // namespace uraft::test
