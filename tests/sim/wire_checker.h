// WireChecker: Raft's safety properties read from the messages on the simulated wire and from
// what each node's disk holds after a restart, never from what a node says about itself.
//   Election Safety: at most one node ever sends AppendEntries or InstallSnapshot in a term.
//   One vote per term: a node never grants two candidates in one term, crashes included.
//   Durable promises: a reply carries a term, a grant names a vote, a successful
//     AppendEntries reply acknowledges entries, an installed snapshot covers an index; after
//     a restart the recovered state must still hold each (a term at least as high; the same
//     vote in that term; each acknowledged entry, unless a newer term's entry replaced it or
//     a snapshot covers it).
//   Committed entries stay (Leader Completeness): an entry a majority of followers
//     acknowledged from the leader of its own term is committed; no leader of a later term
//     may send a different entry at its index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "net/message.h"
#include "raft/storage.h"

namespace uraft::sim {

class WireChecker {
 public:
  explicit WireChecker(std::size_t nodes);

  // A request as its handler starts (reply null), or a reply its handler returned.
  void on_message(NodeId from, NodeId to, const Message& request, const Message* reply);
  // Node `id` restarted from `recovered`: does it still hold everything it promised?
  void on_restart(NodeId id, const RecoveredState& recovered);

  // Violations found so far, one line each (the first is the one to chase).
  const std::vector<std::string>& violations() const noexcept { return violations_; }
  std::uint64_t leaders_seen() const noexcept { return leaders_.size(); }
  std::uint64_t committed_seen() const noexcept { return committed_.size(); }

 private:
  struct Promises {
    Term term;                              // The highest term in any reply it sent.
    std::map<std::uint64_t, NodeId> votes;  // Term -> the candidate it granted.
    std::map<std::uint64_t, Term> log;      // Index -> term of each acknowledged entry.
    LogIndex snapshot_index;                // The highest snapshot it said it installed.
    Term snapshot_term;
  };

  void violation(std::string what);
  void leader(NodeId id, Term term, const char* how);
  void acknowledge(NodeId follower, const AppendEntriesArgs& args, LogIndex match);
  void check_against_committed(NodeId leader, Term term, LogIndex index, Term entry_term);

  std::size_t nodes_;
  std::vector<Promises> promises_;
  std::map<std::uint64_t, NodeId> leaders_;  // Term -> the node that led it.
  // Index -> (term -> followers that acknowledged that entry).
  std::map<std::uint64_t, std::map<std::uint64_t, std::vector<NodeId>>> acks_;
  std::map<std::uint64_t, std::uint64_t> committed_;  // Index -> term.
  std::vector<std::string> violations_;
};

}  // namespace uraft::sim
