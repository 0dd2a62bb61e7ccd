// ClusterInvariants: Raft's safety properties (Figure 3 of the paper) checked across a whole
// simulated cluster, as LogCabin's RaftConsensusInvariants does. A tester calls check() as
// the run goes (between any two loop turns is fine) and on_apply() for every apply message;
// a violation throws InvariantViolation naming the seed, so the run can be replayed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "net/types.h"
#include "raft/log.h"
#include "raft/node.h"

namespace uraft {

struct InvariantViolation : std::logic_error {
  using std::logic_error::logic_error;
};

// One running node as the checker sees it. `instance` tells restarts apart (a restarted node
// keeps its persistent state, not its volatile state).
struct NodeView {
  NodeId id;
  std::uint64_t instance = 0;
  Term term;
  NodeId voted_for = kNoNode;
  bool is_leader = false;
  const RaftLog* log = nullptr;
  LogIndex commit_index;
  LogIndex last_applied;
  // The hard state storage has made durable (what a restart gets back; a storage that loses
  // unsynced writes at a crash may hand back less than term/voted_for). Default: term.
  std::optional<Term> durable_term;
  NodeId durable_vote = kNoNode;

  static NodeView of(const Node& node, std::uint64_t instance);
};

class ClusterInvariants {
 public:
  ClusterInvariants(std::size_t cluster_size, std::uint64_t seed);

  // The running nodes, now. Checks, and remembers what later checks compare against:
  //   Election Safety: at most one leader per term, ever;
  //   persistent state: a node's term never decreases, its vote in a term never changes;
  //   volatile state: an instance's commit index and last applied never decrease;
  //   Log Matching: two logs with an entry of the same index and term agree up to it;
  //   committed entries never change, and every leader of a later term holds them
  //   (Leader Completeness).
  void check(std::span<const NodeView> nodes);

  // A new instance of node `id` starts applying after `snapshot_index` (what it restored).
  void on_start(NodeId id, std::uint64_t instance, LogIndex snapshot_index);
  // The same, for a restart from `restored` (what its storage handed back): the term and vote
  // checks go on from it. Storage that loses unsynced writes may restore less than the last
  // instance held in memory: that was never sent (persist before send), so it is no violation.
  // Without this, a restart is compared with the hard state the nodes reported as durable.
  void on_start(NodeId id, std::uint64_t instance, LogIndex snapshot_index,
                const HardState& restored);
  // The instance handed on `msg`. State Machine Safety: one command per index across the
  // cluster; each instance's indexes strictly consecutive (a snapshot may skip ahead).
  void on_apply(NodeId id, std::uint64_t instance, const ApplyMsg& msg);

  std::uint64_t checks() const noexcept { return checks_; }

 private:
  [[noreturn]] void fail(const std::string& what) const;
  void check_node(const NodeView& v);
  void check_log_matching(const NodeView& a, const NodeView& b);
  void record_committed(const NodeView& v);
  void check_leader_completeness(const NodeView& v);

  struct Committed {
    Term term;            // The entry's term.
    std::string command;  // The entry's command.
    Term seen_in;         // The observing node's term: every leader from it on holds the entry.
  };
  struct Instance {
    std::uint64_t instance = 0;
    LogIndex commit_index;
    LogIndex last_applied;         // As reported by the node.
    LogIndex applied;              // As seen on its apply stream.
    LogIndex committed_watermark;  // Indexes up to here were recorded from this instance.
  };
  struct NodeHistory {
    Term term;
    std::map<std::uint64_t, NodeId> votes;  // term -> the vote cast in it.
    // Across a restart only what was durable must survive: a term or vote held in memory
    // and lost with an unsynced write was never sent (persist before send).
    std::uint64_t instance = 0;  // The instance term and votes were last seen from.
    Term durable_term;
    std::map<std::uint64_t, NodeId> durable_votes;
    Instance current;
  };

  std::size_t cluster_size_;
  std::uint64_t seed_;
  std::uint64_t checks_ = 0;
  std::vector<NodeHistory> nodes_;
  std::map<std::uint64_t, NodeId> leaders_;          // term -> its leader.
  std::vector<std::optional<Committed>> committed_;  // By index; [0] unused.
  std::map<std::pair<std::uint64_t, std::uint32_t>, LogIndex> leader_watermark_;  // (term, id).
  std::vector<std::optional<std::string>> applied_;  // By index: the command applied there.
};

}  // namespace uraft
