// Quorums: counting votes (each voter once, three outcomes) and the commit index a majority
// of match indexes supports. Pure functions; the election and replication drivers call them.
#pragma once

#include <bitset>
#include <cstddef>
#include <span>

#include "net/types.h"

namespace uraft {

// Votes fit one machine word; Raft clusters are 3 to 7 nodes in practice.
inline constexpr std::size_t kClusterSizeMax = 64;

// The smallest number of nodes that forms a majority of cluster_size.
constexpr std::size_t majority(std::size_t cluster_size) { return cluster_size / 2 + 1; }

enum class VoteOutcome { kPending, kWon, kLost };

// One candidacy's ballot box. The candidate records its own vote like any other.
class VoteTally {
 public:
  explicit VoteTally(std::size_t cluster_size);

  // Records `voter`'s answer. Only a voter's first answer counts (a duplicated reply must not
  // count twice); returns whether this one counted.
  bool record(NodeId voter, bool granted);
  // Won once a majority granted; lost once so many denied that a majority cannot be reached.
  VoteOutcome outcome() const;

 private:
  std::size_t cluster_size_;
  std::bitset<kClusterSizeMax> granted_;
  std::bitset<kClusterSizeMax> denied_;
};

// The largest index replicated on a majority: the majority()-th largest of match_indexes, one
// per node with the leader's own last index included.
LogIndex quorum_commit_index(std::span<const LogIndex> match_indexes);

}  // namespace uraft
