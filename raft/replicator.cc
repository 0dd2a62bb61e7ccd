// Leaders: one replicator per follower decides when to send (new entries, a heartbeat, or the
// snapshot for a follower behind the log; a new commit index rides along) and spawns one task
// per RPC, so a slow reply never holds back heartbeats. Replies go through observe_term, then the
// rules: next_index_after_reject for fast backtracking, advance_commit to commit (counting
// only current-term entries), with the leader's own match at its durable watermark.
#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <span>
#include <utility>
#include <variant>
#include <vector>

#include "core/assert.h"
#include "core/loop.h"
#include "core/when.h"
#include "raft/node.h"
#include "raft/quorum.h"
#include "raft/rules.h"

namespace uraft {
namespace {

Task<bool> event_set(Event& event) {
  co_await event.wait();
  co_return true;
}

Task<bool> timer_expires(TimePoint deadline) {
  co_await sleep_until(deadline);
  co_return false;
}

// Until `event` is set (it is reset first) or `deadline` passes, whichever comes first.
Task<void> wake_or_deadline(Event& event, TimePoint deadline) {
  event.reset();
  std::vector<Task<bool>> waits;
  waits.push_back(event_set(event));
  waits.push_back(timer_expires(deadline));
  (void)co_await when_any(std::move(waits));
}

// One RPC in flight to a follower, from its start to its end (however it ends): the
// replicator may send again, so it is woken.
template <typename Progress>
class Inflight {
 public:
  Inflight(Progress& p, bool payload, std::size_t bytes) : p_(p), payload_(payload), bytes_(bytes) {}
  Inflight(const Inflight&) = delete;
  Inflight& operator=(const Inflight&) = delete;
  ~Inflight() {
    --p_.inflight;
    if (payload_) --p_.payload_inflight;
    p_.payload_bytes_inflight -= bytes_;
    p_.wake.set();
  }

 private:
  Progress& p_;
  bool payload_;
  std::size_t bytes_;
};

}  // namespace

template <typename Holds>
bool Node::leader_and_followers_where(const RoleState& role, Holds holds) const {
  std::size_t count = 1;  // The leader itself.
  for (std::size_t i = 0; i < cluster_size_; ++i) {
    if (NodeId{static_cast<std::uint32_t>(i)} != self_ && holds(role.progress[i])) ++count;
  }
  return count >= majority(cluster_size_);
}

void Node::wake_replicators(RoleState& role) {
  for (Progress& p : role.progress) p.wake.set();
}

bool Node::entries_to_send(const Progress& p) const {
  if (p.next_index > log_.last_index()) return false;
  // Behind the snapshot: its chunks go one at a time.
  if (p.next_index <= log_.snapshot_index()) return p.payload_inflight == 0;
  if (p.payload_inflight == 0) return true;
  // Pipelining: more entries while earlier ones are on their way, within the window.
  return p.pipelining && p.payload_inflight < config_.append_window &&
         p.payload_bytes_inflight < config_.append_window_bytes;
}

bool Node::should_send(const RoleState& role, const Progress& p, TimePoint now) const {
  if (p.inflight >= config_.inflight_max) return false;
  // A read round waits for a request sent after it started.
  if (role.read_round_seq != 0 && p.sent_seq < role.read_round_seq) return true;
  // Figure 2, Leaders, 1: heartbeats during idle periods to prevent election timeouts.
  if (now >= p.last_send + config_.heartbeat_interval) return true;
  // Figure 2, Leaders, 3: send entries from next_index (or the snapshot, if they are gone);
  // lost entries or a lost snapshot chunk go again with the next heartbeat, not in a loop.
  // A new commit index alone sends nothing: it rides on the next request, at the latest the
  // next heartbeat (followers apply at most a heartbeat later; nobody waits on that).
  return entries_to_send(p) && now >= p.resend_at;
}

Task<void> Node::replicate(RoleState& role, NodeId peer) {
  const CancelToken token = co_await current_token();
  const Stamp stamp = stamp_of(role);
  check_stamp(token, stamp);
  Progress& p = role.progress[peer.value];
  for (;;) {
    if (should_send(role, p, Loop::current().now())) {
      send_to(role, peer);
      continue;
    }
    // Woken by new entries, a finished RPC, a read round, or the heartbeat clock
    // (run_heartbeat_clock): one plain wait, no timer per wait.
    p.wake.reset();
    co_await p.wake.wait();
    check_stamp(token, stamp);
  }
}

Task<void> Node::run_heartbeat_clock(RoleState& role) {
  const CancelToken token = co_await current_token();
  const Stamp stamp = stamp_of(role);
  check_stamp(token, stamp);
  for (;;) {
    const TimePoint now = Loop::current().now();
    if (config_.check_quorum && !quorum_heard(role, now)) {
      // Raft thesis §6.2: cut off from a majority for an election timeout, a newer leader
      // may exist; stop serving rather than make clients wait for ever.
      step_down();
      co_return;
    }
    TimePoint next = now + config_.heartbeat_interval;
    for (std::size_t i = 0; i < cluster_size_; ++i) {
      if (NodeId{static_cast<std::uint32_t>(i)} == self_) continue;
      Progress& p = role.progress[i];
      const TimePoint due = p.last_send + config_.heartbeat_interval;
      if (due <= now) {
        // Its replicator sends now (last_send moves on), or, with every slot taken, when an
        // RPC finishes (which wakes it too); look again a heartbeat later either way.
        p.wake.set();
      } else {
        next = std::min(next, due);
      }
    }
    co_await sleep_until(next);
    check_stamp(token, stamp);
  }
}

void Node::resend_later(Progress& p) const {
  p.resend_at = Loop::current().now() + config_.heartbeat_interval;
}

void Node::send_to(RoleState& role, NodeId peer) {
  Progress& p = role.progress[peer.value];
  const TimePoint now = Loop::current().now();
  p.last_send = now;
  p.sent_seq = ++role.send_seq;
  ++p.inflight;
  const bool behind_snapshot = p.next_index <= log_.snapshot_index();
  if (behind_snapshot && p.payload_inflight == 0 && now >= p.resend_at &&
      send_snapshot_to(role, peer)) {
    return;
  }
  // Entries from next_index; or, while entries or a snapshot chunk are on their way and no
  // more may go, a heartbeat without entries: at the match index, which the follower holds,
  // or below the snapshot at index 0 (which matches every log and moves no commit index). So
  // the follower answers it at once, not after writing the same entries again, and neither a
  // long transfer nor a slow disk looks like a dead leader or follower (check-quorum).
  const bool heartbeat = behind_snapshot || (p.payload_inflight > 0 && !entries_to_send(p));
  LogIndex prev{p.next_index.value - 1};
  if (heartbeat) prev = p.match_index >= log_.snapshot_index() ? p.match_index : LogIndex{0};
  const LogIndex end{log_.last_index().value + 1};
  AppendEntriesArgs args{current_term_,
                         self_,
                         prev,
                         prev == LogIndex{0} ? Term{0} : *log_.term_at(prev),
                         heartbeat ? std::vector<LogEntry>()
                                   : log_.slice(p.next_index, end, config_.append_bytes_max),
                         commit_index_};
  const bool payload = !args.entries.empty();
  std::size_t bytes = 0;
  if (payload) {
    for (const LogEntry& e : args.entries) bytes += e.command.size();
    ++p.payload_inflight;
    p.payload_bytes_inflight += bytes;
    ++stats_.append_requests;
    stats_.append_entries += args.entries.size();
    // Pipelining: the next request carries what follows these.
    if (p.pipelining) p.next_index = LogIndex{prev.value + args.entries.size() + 1};
  } else {
    ++stats_.heartbeats;
  }
  role.scope.spawn(
      report_errors(this, send_append(role, peer, std::move(args), bytes, p.sent_seq)));
}

Task<void> Node::send_append(RoleState& role, NodeId peer, AppendEntriesArgs args,
                             std::size_t bytes, std::uint64_t seq) {
  Progress& p = role.progress[peer.value];
  const bool payload = !args.entries.empty();
  const Inflight<Progress> inflight(p, payload, bytes);
  const CancelToken token = co_await current_token();
  const Stamp stamp = stamp_of(role);
  check_stamp(token, stamp);
  const LogIndex sent_last{args.prev_log_index.value + args.entries.size()};
  Message request = std::move(args);
  const TimePoint sent = Loop::current().now();
  const RpcResult result = co_await rpc_.call(peer, std::move(request), config_.rpc_timeout);
  check_stamp(token, stamp);
  // Entries that got no usable answer go again with the next heartbeat, not the next loop
  // turn: a failure can come back at once (a dropped reply, a refused connection, a peer
  // answering nonsense), and resending at once would spin. (Unless later requests already
  // matched past them: then nothing is missing.)
  const bool missing = payload && sent_last > p.match_index;
  if (!result.ok()) {
    if (missing) {
      resend_later(p);
      // A pipelining leader sent later ones past them, so it goes back to sending from the
      // match index, one request at a time.
      if (p.pipelining) {
        p.pipelining = false;
        p.next_index = LogIndex{p.match_index.value + 1};
      }
    }
    co_return;
  }
  const auto* reply = std::get_if<AppendEntriesReply>(&*result.reply);
  if (reply != nullptr && observe(reply->term)) check_stamp(token, stamp);  // Throws Cancelled.
  if (reply == nullptr || reply->term != stamp.term) {  // Not an answer a correct peer gives.
    if (missing) resend_later(p);
    co_return;
  }
  on_acked(role, p, seq, sent);
  on_append_reply(role, peer, sent_last, *reply);
}

void Node::on_append_reply(RoleState& role, NodeId peer, LogIndex sent_last,
                           const AppendEntriesReply& reply) {
  Progress& p = role.progress[peer.value];
  if (reply.success) {
    // Figure 2, Leaders, 3: on success update nextIndex and matchIndex. Only what this request
    // carried can be known to match, whatever the reply claims.
    on_match(role, peer, std::min(reply.match_index, sent_last));
    p.pipelining = true;
    return;
  }
  p.pipelining = false;
  if (reply.conflict_term == Term{0} && reply.log_length > LogIndex{0} &&
      reply.log_length <= p.match_index) {
    // Its log ends below what it acknowledged: it lost its disk (it restarted on an empty or
    // an older data directory; or this is a stale reply). The commit index stays where it is;
    // it starts again from where its log ends, with the snapshot if the entries are
    // compacted here.
    p.match_index = LogIndex{reply.log_length.value - 1};
  }
  // Figure 2, Leaders, 3: on a rejection decrement nextIndex and retry — by a whole term at a
  // time, with the follower's hints.
  p.next_index = next_index_after_reject(log_, p.match_index, reply);
}

bool Node::send_snapshot_to(RoleState& role, NodeId peer) {
  // The entries the follower needs are compacted away: send the snapshot (Figure 13), from
  // where the follower's last reply said it stands, one chunk per request.
  Progress& p = role.progress[peer.value];
  URAFT_ASSERT(snapshot_.last_included_index == log_.snapshot_index());
  if (p.snapshot_index != snapshot_.last_included_index) {
    p.snapshot_index = snapshot_.last_included_index;  // A newer snapshot: from the start.
    p.snapshot_offset = 0;
  }
  const std::size_t size = snapshot_.data.size();
  const std::size_t offset = std::min<std::uint64_t>(p.snapshot_offset, size);
  const std::size_t bytes = std::min(config_.snapshot_chunk_bytes, size - offset);
  std::string data;
  try {
    data = snapshot_.data.read(offset, bytes);
  } catch (const std::runtime_error&) {
    // Our own snapshot file cannot be read (EIO): a heartbeat now, the chunk again after a
    // heartbeat interval.
    resend_later(p);
    return false;
  }
  InstallSnapshotArgs args{current_term_,
                           self_,
                           snapshot_.last_included_index,
                           snapshot_.last_included_term,
                           offset,
                           std::move(data),
                           offset + bytes == size,
                           snapshot_.data.crc()};
  ++p.payload_inflight;
  p.payload_bytes_inflight += bytes;
  role.scope.spawn(
      report_errors(this, send_snapshot(role, peer, std::move(args), bytes, p.sent_seq)));
  return true;
}

Task<void> Node::send_snapshot(RoleState& role, NodeId peer, InstallSnapshotArgs args,
                               std::size_t bytes, std::uint64_t seq) {
  Progress& p = role.progress[peer.value];
  const Inflight<Progress> inflight(p, true, bytes);
  const CancelToken token = co_await current_token();
  const Stamp stamp = stamp_of(role);
  check_stamp(token, stamp);
  const LogIndex included = args.last_included_index;
  const std::uint64_t offset = args.offset;
  Message request = std::move(args);
  const TimePoint sent = Loop::current().now();
  const RpcResult result = co_await rpc_.call(peer, std::move(request), config_.rpc_timeout);
  check_stamp(token, stamp);
  const auto* reply = result.ok() ? std::get_if<InstallSnapshotReply>(&*result.reply) : nullptr;
  if (reply != nullptr && observe(reply->term)) check_stamp(token, stamp);  // Throws Cancelled.
  if (reply == nullptr || reply->term != stamp.term) {
    // Lost, refused by the transport, or no answer in our term: the same chunk goes again
    // after a heartbeat interval, never in a loop.
    resend_later(p);
    co_return;
  }
  on_acked(role, p, seq, sent);
  if (reply->installed) {
    // The follower holds the snapshot durably, or had committed past it already: either way
    // its log matches ours up to the snapshot.
    on_match(role, peer, included);
    co_return;
  }
  // Go on from where the follower stands (past a lost chunk, or from 0 after its restart).
  if (p.snapshot_index == included) p.snapshot_offset = reply->next_offset;
  // No progress (the follower is still writing the chunk before, or restarted): not again
  // at once, after a heartbeat interval.
  if (reply->next_offset <= offset) resend_later(p);
}

void Node::on_match(RoleState& role, NodeId peer, LogIndex matched) {
  Progress& p = role.progress[peer.value];
  URAFT_ASSERT(matched <= log_.last_index());
  p.match_index = std::max(p.match_index, matched);
  p.next_index = std::max(p.next_index, LogIndex{p.match_index.value + 1});
  advance_leader_commit(role);
  if (peer == role.transfer_target) role.transfer_wake.set();
}

void Node::advance_leader_commit(RoleState& role) {
  std::array<LogIndex, kClusterSizeMax> matches;
  for (std::size_t i = 0; i < cluster_size_; ++i) {
    // The leader counts itself only for the entries on its own disk.
    matches[i] = NodeId{static_cast<std::uint32_t>(i)} == self_ ? writer_.log_durable()
                                                                : role.progress[i].match_index;
  }
  // Figure 2, Leaders, 4, through the rule: a majority holds N and log[N] is of our term.
  const LogIndex commit =
      advance_commit(log_, current_term_, std::span(matches.data(), cluster_size_), commit_index_);
  if (commit > commit_index_) {
    set_commit_index(commit);  // Followers hear of it with the next request they get.
    role.read_wake.set();  // Reads may wait for a commit of this term.
  }
}

Task<void> Node::count_own_durable(RoleState& role) {
  const CancelToken token = co_await current_token();
  const Stamp stamp = stamp_of(role);
  check_stamp(token, stamp);
  for (;;) {
    advance_leader_commit(role);
    co_await writer_.next_write();
    check_stamp(token, stamp);
  }
}

// --- leadership transfer (Raft thesis §3.10) ---

NodeId Node::most_caught_up_follower(const RoleState& role) const {
  NodeId best = kNoNode;
  const TimePoint now = Loop::current().now();
  for (std::size_t i = 0; i < cluster_size_; ++i) {
    const NodeId id{static_cast<std::uint32_t>(i)};
    if (id == self_) continue;
    // Not one that is down: it answered within an election timeout.
    if (now >= role.progress[i].heard + config_.election_timeout_min) continue;
    if (best == kNoNode || role.progress[i].match_index > role.progress[best.value].match_index) {
      best = id;
    }
  }
  return best;
}

Task<TransferResult> Node::transfer_leadership(NodeId target) {
  if (stopping_ || role_->role != Role::kLeader) co_return TransferResult::kNotLeader;
  if (transferring()) co_return TransferResult::kInProgress;
  if (target == kNoNode) target = most_caught_up_follower(*role_);
  if (target == kNoNode || target == self_ || target.value >= cluster_size_) {
    co_return TransferResult::kBadTarget;
  }
  const Term term = current_term_;
  const TimePoint deadline = Loop::current().now() + config_.election_timeout_max;
  const std::uint64_t id = ++transfers_;
  role_->transfer_target = target;
  role_->transfer_id = id;
  role_->lease_void = true;  // The target stands at once, leases or not.
  note_change();
  spawn_role_task(run_transfer(*role_, target));
  // Until this leadership ends (the target's election reached us) or this transfer is
  // abandoned (a later one may have begun meanwhile); role_ is re-read after every wait (it
  // may be another role by then).
  while (!stopping_ && current_term_ == term && transferring() && role_->transfer_id == id) {
    transfer_done_.reset();
    co_await transfer_done_.wait();
  }
  // A newer term began here: wait to hear who leads it (the winner's first AppendEntries).
  while (!stopping_ && current_term_ > term && leader_id_ == kNoNode &&
         Loop::current().now() < deadline) {
    co_await wake_or_deadline(changed_, deadline);
  }
  if (stopping_) co_return TransferResult::kNotLeader;
  co_return current_term_ > term && leader_id_ == target ? TransferResult::kDone
                                                          : TransferResult::kFailed;
}

Task<void> Node::run_transfer(RoleState& role, NodeId target) {
  const CancelToken token = co_await current_token();
  const Stamp stamp = stamp_of(role);
  check_stamp(token, stamp);
  const TimePoint deadline = Loop::current().now() + config_.election_timeout_min;
  Progress& p = role.progress[target.value];
  // §3.10, 2: the target's log catches up with ours, which stands still meanwhile (start()
  // refuses): its replicator sends as usual, at once.
  p.wake.set();
  while (p.match_index < log_.last_index() && Loop::current().now() < deadline) {
    co_await wake_or_deadline(role.transfer_wake, deadline);
    check_stamp(token, stamp);
  }
  if (p.match_index == log_.last_index()) {
    // §3.10, 3: TimeoutNow. Its reply (or the target's RequestVote, whichever comes first)
    // carries the newer term that ends this role, and cancels this task.
    const Duration left = deadline - Loop::current().now();
    if (left > Duration::zero()) {
      Message request = TimeoutNowArgs{current_term_, self_, log_.last_index()};
      const RpcResult result = co_await rpc_.call(target, std::move(request), left);
      check_stamp(token, stamp);
      if (result.ok()) {
        if (const auto* reply = std::get_if<TimeoutNowReply>(&*result.reply)) {
          if (observe(reply->term)) check_stamp(token, stamp);  // Throws Cancelled.
        }
      }
      co_await sleep_until(deadline);
      check_stamp(token, stamp);
    }
  }
  // §3.10: not done within an election timeout: abandon it and take commands again.
  role.transfer_target = kNoNode;
  transfer_done_.set();
  note_change();
}

// --- ReadIndex (Raft thesis §6.4) ---

bool Node::lease_holds(const RoleState& role, TimePoint now) const {
  if (!config_.lease_reads || role.lease_void) return false;
  // A majority, the leader included, holds to a lease that began within its length (a
  // follower that never answered, at TimePoint::min(), holds to none).
  const auto length = std::chrono::duration_cast<Duration>(
      config_.election_timeout_min * (1.0 - config_.clock_drift_max));
  return leader_and_followers_where(role,
                                    [&](const Progress& p) { return now < p.lease_from + length; });
}

Task<std::optional<LogIndex>> Node::read_index() {
  if (stopping_ || role_->role != Role::kLeader) co_return std::nullopt;
  // §6.4.1: within the lease no other leader can have been elected, so the commit index is
  // current once an entry of this term has committed: read at it, without a round.
  if (log_.term_at(commit_index_) == current_term_ &&
      lease_holds(*role_, Loop::current().now())) {
    ++stats_.lease_reads;
    co_return commit_index_;
  }
  const Term term = current_term_;
  // Join the next round to start: one running now may have sent its requests before this
  // read arrived, so it cannot vouch for it.
  const std::uint64_t gen = read_gen_started_ + 1;
  read_gen_wanted_ = gen;
  role_->read_wake.set();
  for (;;) {
    // Any role change (change_role sets read_done_) ends the read: its round is gone.
    if (stopping_ || current_term_ != term || role_->role != Role::kLeader) {
      co_return std::nullopt;
    }
    // A later round than ours also started after this read arrived: its result serves too.
    if (read_gen_finished_ >= gen) co_return read_result_;
    read_done_.reset();
    co_await read_done_.wait();
  }
}

void Node::on_acked(RoleState& role, Progress& p, std::uint64_t seq, TimePoint sent) {
  p.heard = Loop::current().now();
  // The follower had not moved past our term when this request reached it, at or after
  // `sent`: it holds to our lease from then (leader_recent).
  p.lease_from = std::max(p.lease_from, sent);
  if (seq <= p.acked_seq) return;
  p.acked_seq = seq;
  if (role.read_round_seq != 0 && seq >= role.read_round_seq) role.read_wake.set();
}

bool Node::quorum_heard(const RoleState& role, TimePoint now) const {
  return leader_and_followers_where(role, [&](const Progress& p) {
    return now < p.heard + config_.election_timeout_min;
  });
}

bool Node::read_round_confirmed(const RoleState& role) const {
  return leader_and_followers_where(
      role, [&](const Progress& p) { return p.acked_seq >= role.read_round_seq; });
}

void Node::finish_read_round(std::optional<LogIndex> result) {
  URAFT_ASSERT(read_gen_finished_ < read_gen_started_);
  read_gen_finished_ = read_gen_started_;
  read_result_ = result;
  read_done_.set();
}

Task<void> Node::run_read_rounds(RoleState& role) {
  const CancelToken token = co_await current_token();
  const Stamp stamp = stamp_of(role);
  check_stamp(token, stamp);
  for (;;) {
    // Wait for reads, and for an entry of this term to commit: until then commit_index may
    // lag what an earlier leader committed (Raft thesis §6.4, step 1).
    while (read_gen_wanted_ <= read_gen_started_ || log_.term_at(commit_index_) != current_term_) {
      role.read_wake.reset();
      co_await role.read_wake.wait();
      check_stamp(token, stamp);
    }
    read_gen_started_ = read_gen_wanted_;
    const LogIndex index = commit_index_;
    // Step 2-3: a round of AppendEntries sent from now on, answered in this term by a
    // majority, shows no newer leader had been elected when this round began.
    role.read_round_seq = role.send_seq + 1;
    wake_replicators(role);
    const TimePoint deadline = Loop::current().now() + config_.election_timeout_min;
    bool confirmed = read_round_confirmed(role);
    while (!confirmed && Loop::current().now() < deadline) {
      co_await wake_or_deadline(role.read_wake, deadline);
      check_stamp(token, stamp);
      confirmed = read_round_confirmed(role);
    }
    role.read_round_seq = 0;
    // Not confirmed in time: perhaps deposed in a partition; the readers hear nullopt.
    finish_read_round(confirmed ? std::optional<LogIndex>(index) : std::nullopt);
  }
}

}  // namespace uraft
