#include "raft/quorum.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <vector>

namespace uraft {
namespace {

TEST_CASE("a majority is more than half of the cluster") {
  // Goal: §5.2: a candidate wins with votes from a majority of the full cluster.
  CHECK(majority(1) == 1);
  CHECK(majority(2) == 2);
  CHECK(majority(3) == 2);
  CHECK(majority(4) == 3);
  CHECK(majority(5) == 3);
  CHECK(majority(7) == 4);
}

TEST_CASE("a candidate wins with its own vote and enough others") {
  // Goal: §5.2: the self-vote counts like any other; a single-node cluster wins alone.
  VoteTally single(1);
  CHECK(single.outcome() == VoteOutcome::kPending);
  single.record(NodeId{0}, true);
  CHECK(single.outcome() == VoteOutcome::kWon);

  VoteTally tally(5);
  tally.record(NodeId{2}, true);  // Self.
  tally.record(NodeId{0}, true);
  CHECK(tally.outcome() == VoteOutcome::kPending);
  tally.record(NodeId{4}, true);
  CHECK(tally.outcome() == VoteOutcome::kWon);
}

TEST_CASE("each voter counts once") {
  // Goal: a duplicated reply or a changed answer from the same voter is not a second vote.
  VoteTally tally(3);
  CHECK(tally.record(NodeId{0}, true));
  CHECK_FALSE(tally.record(NodeId{0}, true));
  CHECK(tally.outcome() == VoteOutcome::kPending);
  CHECK_FALSE(tally.record(NodeId{0}, false));
  CHECK(tally.record(NodeId{1}, true));
  CHECK(tally.outcome() == VoteOutcome::kWon);
}

TEST_CASE("the election is lost once a majority can no longer be reached") {
  // Goal: the third outcome lets the candidate stop waiting before its timer fires.
  VoteTally tally(4);
  tally.record(NodeId{0}, true);
  tally.record(NodeId{1}, false);
  CHECK(tally.outcome() == VoteOutcome::kPending);
  tally.record(NodeId{2}, false);  // At most 2 of 4 can grant now; 3 are needed.
  CHECK(tally.outcome() == VoteOutcome::kLost);
}

TEST_CASE("quorum_commit_index is the largest index a majority holds") {
  // Goal: Figure 2, Leaders, 4: a majority of matchIndex[i] >= N, self included.
  auto quorum = [](std::vector<std::uint64_t> values) {
    std::vector<LogIndex> indexes;
    for (std::uint64_t v : values) indexes.push_back(LogIndex{v});
    return quorum_commit_index(indexes).value;
  };
  CHECK(quorum({7}) == 7);
  CHECK(quorum({5, 3, 4}) == 4);
  CHECK(quorum({5, 0, 0}) == 0);
  CHECK(quorum({9, 9, 1, 1}) == 1);  // Two of four is not a majority.
  CHECK(quorum({9, 9, 9, 1}) == 9);
  CHECK(quorum({1, 8, 3, 8, 2}) == 3);
}

// The reference for quorum_commit_index: sort descending and pick the majority-th.
LogIndex reference_quorum(std::vector<LogIndex> indexes) {
  std::sort(indexes.begin(), indexes.end(), std::greater<>());
  return indexes[indexes.size() / 2];
}

TEST_CASE("property: quorum_commit_index matches sort-and-pick and a majority count") {
  // Goal: for random clusters, the result is held by a majority and nothing larger is.
  std::mt19937_64 rng(42);
  for (int run = 0; run < 20000; ++run) {
    const std::size_t n = std::uniform_int_distribution<std::size_t>(1, run % 10 ? 9 : 64)(rng);
    std::uniform_int_distribution<std::uint64_t> index(0, run % 2 ? 5 : 1000);
    std::vector<LogIndex> indexes(n);
    for (LogIndex& i : indexes) i = LogIndex{index(rng)};
    const LogIndex got = quorum_commit_index(indexes);
    REQUIRE(got == reference_quorum(indexes));
    auto holders = [&](LogIndex at) {
      return std::count_if(indexes.begin(), indexes.end(), [at](LogIndex i) { return i >= at; });
    };
    REQUIRE(static_cast<std::size_t>(holders(got)) >= majority(n));
    REQUIRE(static_cast<std::size_t>(holders(LogIndex{got.value + 1})) < majority(n));
  }
}

TEST_CASE("property: a tally of random, repeated answers matches counting first answers") {
  // Goal: won and lost follow from each voter's first answer only, and once decided stay so.
  std::mt19937_64 rng(7);
  for (int run = 0; run < 5000; ++run) {
    const std::uint32_t n = std::uniform_int_distribution<std::uint32_t>(1, 9)(rng);
    VoteTally tally(n);
    std::map<std::uint32_t, bool> first_answers;
    VoteOutcome previous = VoteOutcome::kPending;
    for (int k = 0; k < 20; ++k) {
      const std::uint32_t voter = std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng);
      const bool granted = rng() % 2 == 0;
      REQUIRE(tally.record(NodeId{voter}, granted) == first_answers.emplace(voter, granted).second);
      std::size_t grants = 0;
      for (const auto& [id, g] : first_answers) grants += g ? 1 : 0;
      const std::size_t denials = first_answers.size() - grants;
      const VoteOutcome expected = grants >= majority(n)       ? VoteOutcome::kWon
                                   : denials > n - majority(n) ? VoteOutcome::kLost
                                                               : VoteOutcome::kPending;
      REQUIRE(tally.outcome() == expected);
      if (previous != VoteOutcome::kPending) REQUIRE(tally.outcome() == previous);
      previous = tally.outcome();
    }
  }
}

}  // namespace
}  // namespace uraft
