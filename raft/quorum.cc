#include "raft/quorum.h"

#include <algorithm>
#include <array>
#include <functional>

#include "core/assert.h"

namespace uraft {

VoteTally::VoteTally(std::size_t cluster_size) : cluster_size_(cluster_size) {
  URAFT_ASSERT(cluster_size >= 1);
  URAFT_ASSERT(cluster_size <= kClusterSizeMax);
}

bool VoteTally::record(NodeId voter, bool granted) {
  URAFT_ASSERT(voter.value < cluster_size_);
  if (granted_[voter.value] || denied_[voter.value]) return false;
  (granted ? granted_ : denied_).set(voter.value);
  return true;
}

VoteOutcome VoteTally::outcome() const {
  const std::size_t needed = majority(cluster_size_);
  if (granted_.count() >= needed) return VoteOutcome::kWon;
  if (cluster_size_ - denied_.count() < needed) return VoteOutcome::kLost;
  return VoteOutcome::kPending;
}

LogIndex quorum_commit_index(std::span<const LogIndex> match_indexes) {
  URAFT_ASSERT(!match_indexes.empty());
  URAFT_ASSERT(match_indexes.size() <= kClusterSizeMax);
  std::array<LogIndex, kClusterSizeMax> sorted;  // On the stack: this runs on every ack.
  const auto end = std::copy(match_indexes.begin(), match_indexes.end(), sorted.begin());
  const auto kth = sorted.begin() + static_cast<std::ptrdiff_t>(majority(match_indexes.size()) - 1);
  std::nth_element(sorted.begin(), kth, end, std::greater<>());
  return *kth;
}

}  // namespace uraft
