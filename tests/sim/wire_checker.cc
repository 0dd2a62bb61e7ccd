#include "tests/sim/wire_checker.h"

#include <algorithm>
#include <type_traits>

namespace uraft::sim {

namespace {

std::string node_name(NodeId id) { return "node " + std::to_string(id.value); }

Term reply_term(const Message& m) {
  return std::visit(
      [](const auto& r) -> Term {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, RequestVoteReply> ||
                      std::is_same_v<T, AppendEntriesReply> ||
                      std::is_same_v<T, InstallSnapshotReply> ||
                      std::is_same_v<T, TimeoutNowReply>) {
          return r.term;
        } else {
          return Term{0};
        }
      },
      m);
}

}  // namespace

WireChecker::WireChecker(std::size_t nodes) : nodes_(nodes), promises_(nodes) {}

void WireChecker::violation(std::string what) { violations_.push_back(std::move(what)); }

void WireChecker::leader(NodeId id, Term term, const char* how) {
  auto [it, fresh] = leaders_.emplace(term.value, id);
  if (!fresh && it->second != id) {
    violation("Election Safety: " + node_name(it->second) + " and " + node_name(id) +
              " both led term " + std::to_string(term.value) + " (" + how + ")");
  }
}

void WireChecker::check_against_committed(NodeId from, Term term, LogIndex index, Term entry_term) {
  // Leader Completeness: a leader of a later term holds every committed entry. (A deposed
  // leader of an older term may still send what it had; followers refuse it by its term.)
  auto it = committed_.find(index.value);
  if (it != committed_.end() && term.value > it->second && it->second != entry_term.value) {
    violation("committed entry lost: index " + std::to_string(index.value) + " committed in term " +
              std::to_string(it->second) + ", but " + node_name(from) + ", leader of term " +
              std::to_string(term.value) + ", sends one of term " +
              std::to_string(entry_term.value));
  }
}

void WireChecker::acknowledge(NodeId follower, const AppendEntriesArgs& args, LogIndex match) {
  std::map<std::uint64_t, Term>& log = promises_[follower.value].log;
  auto promise = [&](std::uint64_t index, Term term) {
    auto it = log.find(index);
    if (it != log.end() && it->second != term) log.erase(it, log.end());  // The follower cut here.
    log[index] = term;
    // Committed (§5.4.2): on a majority through its own term's leader. An older term's entry
    // on a majority is not (Figure 8): a leader elected before it got there may replace it.
    if (term != args.term) return;
    auto& voters = acks_[index][term.value];
    if (std::find(voters.begin(), voters.end(), follower) == voters.end())
      voters.push_back(follower);
    if (voters.size() >= nodes_ / 2 + 1 && !committed_.contains(index)) {
      committed_[index] = term.value;
    }
  };
  if (args.prev_log_index.value > 0) promise(args.prev_log_index.value, args.prev_log_term);
  for (std::size_t i = 0; i < args.entries.size(); ++i) {
    const std::uint64_t index = args.prev_log_index.value + 1 + i;
    if (index > match.value) break;
    promise(index, args.entries[i].term);
  }
}

void WireChecker::on_message(NodeId from, NodeId to, const Message& request, const Message* reply) {
  if (reply == nullptr) {
    if (const auto* ae = std::get_if<AppendEntriesArgs>(&request)) {
      leader(from, ae->term, "AppendEntries");
      if (ae->prev_log_index.value > 0)
        check_against_committed(from, ae->term, ae->prev_log_index, ae->prev_log_term);
      for (std::size_t i = 0; i < ae->entries.size(); ++i) {
        check_against_committed(from, ae->term, LogIndex{ae->prev_log_index.value + 1 + i},
                                ae->entries[i].term);
      }
    } else if (const auto* is = std::get_if<InstallSnapshotArgs>(&request)) {
      leader(from, is->term, "InstallSnapshot");
    }
    return;
  }
  // `to` replied to `from`.
  Promises& p = promises_[to.value];
  const Term term = reply_term(*reply);
  p.term = std::max(p.term, term);
  const auto* vote = std::get_if<RequestVoteReply>(reply);
  if (vote && vote->vote_granted && !std::get<RequestVoteArgs>(request).pre_vote) {
    const auto& args = std::get<RequestVoteArgs>(request);
    auto [it, fresh] = p.votes.emplace(vote->term.value, args.candidate_id);
    if (!fresh && it->second != args.candidate_id) {
      violation("one vote per term: " + node_name(to) + " granted " + node_name(it->second) +
                " and " + node_name(args.candidate_id) + " in term " +
                std::to_string(vote->term.value));
    }
  } else if (const auto* ae = std::get_if<AppendEntriesReply>(reply); ae && ae->success) {
    acknowledge(to, std::get<AppendEntriesArgs>(request), ae->match_index);
  } else if (const auto* is = std::get_if<InstallSnapshotReply>(reply); is && is->installed) {
    const auto& args = std::get<InstallSnapshotArgs>(request);
    if (args.last_included_index > p.snapshot_index) {
      p.snapshot_index = args.last_included_index;
      p.snapshot_term = args.last_included_term;
    }
  }
}

void WireChecker::on_restart(NodeId id, const RecoveredState& r) {
  Promises& p = promises_[id.value];
  const std::string who = node_name(id) + " restarted";
  const Term term = r.hard_state.current_term;
  if (term < p.term) {
    violation(who + " in term " + std::to_string(term.value) + " but had replied in term " +
              std::to_string(p.term.value));
  }
  if (auto it = p.votes.find(term.value);
      it != p.votes.end() && r.hard_state.voted_for != it->second) {
    violation(who + " without its vote for " + node_name(it->second) + " in term " +
              std::to_string(term.value));
  }
  const LogIndex base = r.snapshot ? r.snapshot->last_included_index : LogIndex{0};
  auto term_at = [&](std::uint64_t index) -> std::optional<Term> {
    if (index == base.value) return r.snapshot ? r.snapshot->last_included_term : Term{0};
    if (index < base.value || index > base.value + r.entries.size()) return std::nullopt;
    return r.entries[index - base.value - 1].term;
  };
  if (p.snapshot_index > base) {
    const std::optional<Term> t = term_at(p.snapshot_index.value);
    if (!t || *t != p.snapshot_term) {
      violation(who + " with its log and snapshot below the snapshot it installed at index " +
                std::to_string(p.snapshot_index.value));
    }
  }
  for (const auto& [index, promised] : p.log) {
    if (index <= base.value) continue;  // Covered by the snapshot.
    const std::optional<Term> t = term_at(index);
    if (t && *t > promised) break;  // A newer leader's entry replaced it (and what follows).
    if (!t || *t != promised) {
      violation(who + " without the entry it acknowledged at index " + std::to_string(index) +
                " (term " + std::to_string(promised.value) + "; has " +
                (t ? "term " + std::to_string(t->value) : std::string("nothing")) + ")");
      break;
    }
  }
}

}  // namespace uraft::sim
