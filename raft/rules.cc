#include "raft/rules.h"

#include <algorithm>

#include "core/assert.h"
#include "raft/quorum.h"

namespace uraft {
namespace {

LogIndex plus(LogIndex index, std::size_t n) { return LogIndex{index.value + n}; }

// Receiver rules run after observe_term(), so a request is never newer than the receiver.
void assert_term_observed(Term current_term, Term msg_term) {
  URAFT_ASSERT(msg_term <= current_term);
}

// The hints for fast backtracking (lab 2B guidance), given the receiver's term at the
// prev_log_index it was asked about (none if its log is too short).
void fill_reject_hints(const RaftLog& log, std::optional<Term> term_at_prev,
                       AppendEntriesReply& reply) {
  reply.log_length = plus(log.last_index(), 1);
  reply.conflict_term = term_at_prev.value_or(Term{0});
  reply.conflict_index = term_at_prev ? *log.first_index_of_term(*term_at_prev) : reply.log_length;
}

// The first position at or after `from` in args.entries whose index the log lacks or holds
// with another term; entries.size() if all of them are already there.
std::size_t first_new_entry(const RaftLog& log, const AppendEntriesArgs& args, std::size_t from) {
  for (std::size_t i = from; i < args.entries.size(); ++i) {
    if (log.term_at(plus(args.prev_log_index, i + 1)) != args.entries[i].term) return i;
  }
  return args.entries.size();
}

}  // namespace

TermObservation observe_term(Term current_term, Term msg_term) {
  if (msg_term > current_term) return {.step_down = true, .new_term = msg_term};
  return {.step_down = false, .new_term = current_term};
}

bool is_at_least_as_up_to_date(Term last_log_term, LogIndex last_log_index, const RaftLog& log) {
  if (last_log_term != log.last_term()) return last_log_term > log.last_term();
  return last_log_index >= log.last_index();
}

VoteDecision decide_vote(Term current_term, NodeId voted_for, const RaftLog& log,
                         const RequestVoteArgs& args) {
  URAFT_ASSERT(!args.pre_vote);
  assert_term_observed(current_term, args.term);
  // Figure 2, RequestVote receiver, 1: reply false if term < currentTerm.
  if (args.term < current_term) return {.grant = false};
  // Figure 2, RequestVote receiver, 2: if votedFor is null or candidateId, and the
  // candidate's log is at least as up-to-date as the receiver's log, grant vote.
  const bool free_to_vote = voted_for == kNoNode || voted_for == args.candidate_id;
  return {.grant = free_to_vote &&
                   is_at_least_as_up_to_date(args.last_log_term, args.last_log_index, log)};
}

VoteDecision decide_pre_vote(Term current_term, const RaftLog& log, const RequestVoteArgs& args,
                             bool leader_recent) {
  URAFT_ASSERT(args.pre_vote);
  // A pre-vote is asked for the term after the asker's; the receiver stays in its own.
  return {.grant = !leader_recent && args.term > current_term &&
                   is_at_least_as_up_to_date(args.last_log_term, args.last_log_index, log)};
}

bool is_well_formed(const AppendEntriesArgs& args) {
  Term previous = args.prev_log_term;
  for (const LogEntry& e : args.entries) {
    if (e.term < previous) return false;
    previous = e.term;
  }
  return previous <= args.term;
}

AppendDecision decide_append(const RaftLog& log, Term current_term, LogIndex commit_index,
                             const AppendEntriesArgs& args) {
  assert_term_observed(current_term, args.term);
  URAFT_ASSERT(is_well_formed(args));
  URAFT_ASSERT(commit_index >= log.snapshot_index());
  AppendDecision d;  // Until accepted: a rejection, which changes nothing when carried out.
  d.reply.term = current_term;
  d.append_from = args.entries.size();
  d.commit_index = commit_index;
  // Figure 2, AppendEntries receiver, 1: reply false if term < currentTerm.
  if (args.term < current_term) return d;

  // Entries at or below the snapshot base are committed, so they match any current leader's:
  // skip them, and check receiver 2 at the base against the entry the leader sent for it.
  const std::size_t skip =
      args.prev_log_index < log.snapshot_index()
          ? std::min(args.entries.size(), log.snapshot_index().value - args.prev_log_index.value)
          : 0;
  const LogIndex prev = plus(args.prev_log_index, skip);
  const Term prev_term = skip == 0 ? args.prev_log_term : args.entries[skip - 1].term;
  // Figure 2, AppendEntries receiver, 2: reply false if the log doesn't contain an entry at
  // prevLogIndex whose term matches prevLogTerm. (Below the base, every entry matches.)
  if (prev >= log.snapshot_index()) {
    const std::optional<Term> term_at_prev = log.term_at(prev);
    if (term_at_prev != prev_term) {
      fill_reject_hints(log, term_at_prev, d.reply);
      return d;
    }
  }

  // Figure 2, AppendEntries receiver, 3: if an existing entry conflicts with a new one (same
  // index but different terms), delete it and all that follow. Only a conflict truncates: a
  // stale request whose entries all match leaves a longer suffix in place.
  d.append_from = first_new_entry(log, args, skip);
  const LogIndex first_new = plus(args.prev_log_index, d.append_from + 1);
  if (d.append_from < args.entries.size() && first_new <= log.last_index()) {
    URAFT_ASSERT(first_new > commit_index);  // Committed entries never conflict (§5.4).
    d.truncate_from = first_new;
  }
  // Figure 2, AppendEntries receiver, 4: append any new entries not already in the log
  // (those from append_from on).
  const LogIndex last_new = plus(args.prev_log_index, args.entries.size());
  d.reply.success = true;
  d.reply.match_index = last_new;
  // Figure 2, AppendEntries receiver, 5: if leaderCommit > commitIndex, set commitIndex =
  // min(leaderCommit, index of last new entry). A stale request must not lower it.
  d.commit_index = std::max(commit_index, std::min(args.leader_commit, last_new));
  return d;
}

LogIndex next_index_after_reject(const RaftLog& log, LogIndex match_index,
                                 const AppendEntriesReply& reply) {
  URAFT_ASSERT(!reply.success);
  URAFT_ASSERT(match_index <= log.last_index());
  LogIndex next = reply.conflict_index;  // The leader has no entry of conflict_term.
  if (reply.conflict_term == Term{0}) {
    next = reply.log_length;  // The follower's log ends before prev_log_index.
  } else if (const auto last = log.last_index_of_term(reply.conflict_term)) {
    next = plus(*last, 1);  // The leader has conflict_term: resend after its last entry of it.
  }
  // Hints are wire input: never back up over known matches, never jump past the leader's log.
  return std::clamp(next, plus(match_index, 1), plus(log.last_index(), 1));
}

LogIndex advance_commit(const RaftLog& log, Term current_term,
                        std::span<const LogIndex> match_indexes, LogIndex commit_index) {
  URAFT_ASSERT(commit_index >= log.snapshot_index());
  const LogIndex quorum_index = quorum_commit_index(match_indexes);
  URAFT_ASSERT(quorum_index <= log.last_index());
  // Figure 2, Leaders, 4: if there exists an N such that N > commitIndex, a majority of
  // matchIndex[i] >= N, and log[N].term == currentTerm: set commitIndex = N. Terms never
  // decrease along the log, so if the quorum index is from an older term, every N below it
  // is too: such entries commit only indirectly (§5.4.2, Figure 8).
  if (quorum_index > commit_index && log.term_at(quorum_index) == current_term) {
    return quorum_index;
  }
  return commit_index;
}

SnapshotAction decide_install_snapshot(const RaftLog& log, Term current_term, LogIndex commit_index,
                                       const InstallSnapshotArgs& args) {
  assert_term_observed(current_term, args.term);
  URAFT_ASSERT(commit_index >= log.snapshot_index());
  // Figure 13, InstallSnapshot receiver, 1: reply immediately if term < currentTerm.
  if (args.term < current_term) return SnapshotAction::kIgnore;
  // Everything it holds is committed here already: installing would move the state machine
  // backwards (lab 2D).
  if (args.last_included_index <= commit_index) return SnapshotAction::kIgnore;
  // Figure 13, InstallSnapshot receiver, 6: if an existing log entry has the same index and
  // term as the snapshot's last included entry, retain the log entries following it.
  if (log.term_at(args.last_included_index) == args.last_included_term) {
    return SnapshotAction::kKeepSuffix;
  }
  // Figure 13, InstallSnapshot receiver, 7: discard the entire log.
  return SnapshotAction::kReplaceLog;
}

}  // namespace uraft
