// The protocol decisions of Figure 2 (and Figure 13, InstallSnapshot) of the Raft paper, as
// pure functions: no co_await, no I/O, no clock. A driver persists, sends and awaits, then
// hands what arrived to one of these and carries out the decision it gets back.
//
// Every message first passes observe_term(); the receiver rules below then assume
// args.term <= current_term (asserted: a driver that skips observe_term is a bug). A
// commit_index is never below the log's snapshot base: a restarted node starts from it.
#pragma once

#include <cstddef>
#include <optional>
#include <span>

#include "net/message.h"
#include "net/types.h"
#include "raft/log.h"

namespace uraft {

struct TermObservation {
  bool step_down = false;  // msg_term is newer: adopt it, clear voted_for, become follower.
  Term new_term;           // The current term after observing (never smaller than before).
};

// Figure 2, Rules for All Servers, 2: if an RPC request or response contains term T >
// currentTerm, set currentTerm = T and convert to follower. The one choke point for terms.
// (A candidate that gets AppendEntries from a leader of its own term also becomes a
// follower, Figure 2, Candidates, 3; the driver does that on a successful term check.)
[[nodiscard]] TermObservation observe_term(Term current_term, Term msg_term);

// §5.4.1: is a log ending at (last_log_term, last_log_index) at least as up-to-date as `log`?
// The later last term wins; with equal last terms, the longer log wins.
[[nodiscard]] bool is_at_least_as_up_to_date(Term last_log_term, LogIndex last_log_index,
                                             const RaftLog& log);

struct VoteDecision {
  bool grant = false;  // If so, the driver persists voted_for = candidate before replying.
};

// Figure 2, RequestVote receiver, 1-2. `voted_for` is the vote cast in current_term (kNoNode
// if none), so a grant here is the only vote of the term.
[[nodiscard]] VoteDecision decide_vote(Term current_term, NodeId voted_for, const RaftLog& log,
                                       const RequestVoteArgs& args);

// Raft thesis §9.6, pre-vote: would the receiver vote for args' candidate in args.term? Yes if
// that term is newer than its own, the candidate's log is at least as up-to-date, and the
// receiver has not heard from a live leader within the minimum election timeout
// (`leader_recent`): a node that rejoins after a partition cannot disrupt a working leader.
// The receiver changes nothing (its term and vote stay), so a grant is no promise.
[[nodiscard]] VoteDecision decide_pre_vote(Term current_term, const RaftLog& log,
                                           const RequestVoteArgs& args, bool leader_recent);

// Whether AppendEntries args are internally consistent (entry terms never decrease, start at
// or after prev_log_term and end at or before the leader's term). Wire input: the driver
// drops a message that fails this before it reaches decide_append.
[[nodiscard]] bool is_well_formed(const AppendEntriesArgs& args);

// What a follower does with an AppendEntries: truncate the log from truncate_from (if set),
// append args.entries[append_from..], set commit_index, then persist and send `reply`.
// A rejection is inert: nothing to truncate or append, the commit index unchanged.
struct AppendDecision {
  AppendEntriesReply reply;  // success, match_index or the backtracking hints.
  std::optional<LogIndex> truncate_from;
  std::size_t append_from = 0;  // Position in args.entries of the first entry to append.
  LogIndex commit_index;        // Never smaller than the commit index passed in.
};

// Figure 2, AppendEntries receiver, 1-5. A stale or reordered request never truncates
// entries that match it; entries at or below the snapshot base are committed, so they match.
[[nodiscard]] AppendDecision decide_append(const RaftLog& log, Term current_term,
                                           LogIndex commit_index, const AppendEntriesArgs& args);

// The leader's next_index for a follower after a rejected AppendEntries, using the reply's
// hints to skip a whole conflicting term per round trip (lab 2B guidance). Kept within
// match_index + 1 .. log.last_index() + 1, whatever the reply says.
[[nodiscard]] LogIndex next_index_after_reject(const RaftLog& log, LogIndex match_index,
                                               const AppendEntriesReply& reply);

// Figure 2, Leaders, 4: the leader's new commit index given every node's match index (its
// own last index included). Never decreases.
[[nodiscard]] LogIndex advance_commit(const RaftLog& log, Term current_term,
                                      std::span<const LogIndex> match_indexes,
                                      LogIndex commit_index);

enum class SnapshotAction {
  kIgnore,      // Stale or already covered by the commit index: reply and do nothing.
  kKeepSuffix,  // Install; the log matches at last_included_index, so compact_prefix there.
  kReplaceLog,  // Install; discard the whole log (reset_to_snapshot).
};

// Figure 13, InstallSnapshot receiver, 1 and 6-7, for a complete snapshot (the driver
// assembles chunks). On install, commit_index and last_applied become last_included_index.
[[nodiscard]] SnapshotAction decide_install_snapshot(const RaftLog& log, Term current_term,
                                                     LogIndex commit_index,
                                                     const InstallSnapshotArgs& args);

}  // namespace uraft
