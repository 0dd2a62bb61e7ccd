// Elections: the follower's election timer and one task per (pre-)candidacy. A campaign counts
// votes with when_quorum over one RequestVote task per peer (and the self-vote), raced
// against its election timer with when_any; a term change cancels it with its role. With
// Config::pre_vote a pre-candidacy comes first, in the same term (Raft thesis §9.6).
#include <utility>
#include <variant>
#include <vector>

#include "core/assert.h"
#include "core/loop.h"
#include "core/when.h"
#include "raft/node.h"
#include "raft/quorum.h"

namespace uraft {
namespace {

Task<bool> granted_now() { co_return true; }

Task<bool> timer_expires(TimePoint deadline) {
  co_await sleep_until(deadline);
  co_return false;
}

struct IsGranted {
  bool operator()(bool granted) const noexcept { return granted; }
};

}  // namespace

Duration Node::random_election_timeout() {
  const auto spread = static_cast<std::uint64_t>(
      (config_.election_timeout_max - config_.election_timeout_min).count());
  return config_.election_timeout_min +
         Duration(static_cast<Duration::rep>(Loop::current().rng().uniform(0, spread)));
}

void Node::reset_election_timer() {
  election_deadline_ = Loop::current().now() + random_election_timeout();
}

bool Node::leader_recent() const {
  if (role_->role == Role::kLeader) return true;
  const TimePoint now = Loop::current().now();
  // With lease reads, a node that just started may have heard from a leader before it
  // stopped (and forgotten it): it holds to that leader's lease as if it had. (Every node of
  // a cluster must run with lease reads alike: the leader's lease relies on the others.)
  if (config_.lease_reads && now < started_ + config_.election_timeout_min) return true;
  return leader_id_ != kNoNode && now < leader_heard_ + config_.election_timeout_min;
}

Task<void> Node::run_follower(RoleState& role) {
  const CancelToken token = co_await current_token();
  const Stamp stamp = stamp_of(role);
  check_stamp(token, stamp);  // Spawned tasks start a turn later: the role may be gone.
  // Figure 2, Followers, 2: if the election timeout elapses without hearing from the current
  // leader or granting a vote, convert to candidate. Handlers move the deadline on.
  while (Loop::current().now() < election_deadline_) {
    co_await sleep_until(election_deadline_);
    check_stamp(token, stamp);
  }
  stand_for_election();
}

Task<void> Node::run_campaign(RoleState& role) {
  const CancelToken token = co_await current_token();
  const Stamp stamp = stamp_of(role);
  check_stamp(token, stamp);
  const bool pre_vote = role.role == Role::kPreCandidate;
  // Figure 2, Candidates, 1: reset the election timer for this candidacy.
  const TimePoint deadline = Loop::current().now() + random_election_timeout();
  // A candidate's log, term and self-vote are durable before anyone is asked (persist before
  // send): a restart can neither vote for another in this term nor lead with a shorter log.
  // A pre-candidate promises nothing, so it need not wait.
  while (!pre_vote && !writer_.covers(HardState{current_term_, self_}, log_.last_index())) {
    co_await writer_.next_write();
    check_stamp(token, stamp);
  }
  // A pre-vote asks about the term a candidacy would take.
  const RequestVoteArgs args{pre_vote ? Term{current_term_.value + 1} : current_term_, self_,
                             log_.last_index(), log_.last_term(), pre_vote, role.transfer};
  std::vector<Task<bool>> racers;
  racers.push_back(collect_votes(role, args));
  racers.push_back(timer_expires(deadline));
  const AnyResult<bool> first = co_await when_any(std::move(racers));
  check_stamp(token, stamp);
  if (first.index == 0 && first.value) {
    // Figure 2, Candidates, 2: votes received from a majority: become leader. (Pre-votes from
    // a majority: stand for election.)
    if (pre_vote) {
      become_candidate();
    } else {
      become_leader();
    }
    co_return;
  }
  if (first.index == 0) {
    // Lost (a majority refused or is unreachable): stand again only when the timer expires,
    // so that candidates spread out.
    co_await sleep_until(deadline);
    check_stamp(token, stamp);
  }
  // Figure 2, Candidates, 4: if the election timeout elapses, start a new election (after a
  // pre-vote, with pre-vote: the term rises only once a majority would follow).
  stand_for_election();
}

Task<bool> Node::collect_votes(RoleState& role, RequestVoteArgs args) {
  const CancelToken token = co_await current_token();
  const Stamp stamp = stamp_of(role);
  // One ballot per node, the candidate's own among them: each voter counts once.
  std::vector<Task<bool>> ballots;
  for (std::uint32_t i = 0; i < cluster_size_; ++i) {
    const NodeId peer{i};
    ballots.push_back(peer == self_ ? granted_now() : request_vote(role, peer, args));
  }
  const IsGranted granted;
  const QuorumResult<bool> votes =
      co_await when_quorum(majority(cluster_size_), std::move(ballots), granted);
  check_stamp(token, stamp);
  // The tally recorded every answer the quorum counted (and maybe a few more).
  if (votes.won) URAFT_ASSERT(role.tally.outcome() == VoteOutcome::kWon);
  co_return votes.won;
}

Task<bool> Node::request_vote(RoleState& role, NodeId peer, RequestVoteArgs args) {
  const CancelToken token = co_await current_token();
  const Stamp stamp = stamp_of(role);
  for (;;) {
    Message request = args;
    const RpcResult result = co_await rpc_.call(peer, std::move(request), config_.rpc_timeout);
    check_stamp(token, stamp);
    if (result.ok()) {
      if (const auto* reply = std::get_if<RequestVoteReply>(&*result.reply)) {
        if (observe(reply->term)) check_stamp(token, stamp);  // Stepped down: throws Cancelled.
        // A vote counts for the term it was asked for only; a pre-vote comes from a voter
        // still below that term (observe above: not above ours).
        const bool granted = reply->vote_granted && (args.pre_vote || reply->term == args.term);
        role.tally.record(peer, granted);
        co_return granted;
      }
    }
    if (!result.ok() && result.error == RpcError::kClosed) co_return false;
    // Lost or unreachable: ask again while the candidacy lasts.
    co_await sleep_for(config_.vote_retry_interval);
    check_stamp(token, stamp);
  }
}

}  // namespace uraft
