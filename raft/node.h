// Node: one Raft peer (Figures 2 and 13 of the paper) as coroutines on one loop. The rules
// layer (raft/rules, raft/quorum, raft/log) makes every decision; the drivers here only
// sequence I/O: persist, send, await replies and quorums, then hand what arrived to a rule.
//
// Tasks and who owns them:
//   root scope      the durable-state writer (raft/durable_writer.h), the applier (feeds the
//                   apply channel) and the reapers of retired roles;
//   role scope      stamped (term, role), cancelled synchronously by any term or role change:
//                   follower: the election timer; candidate: one campaign (when_quorum over
//                   RequestVote, raced against the election timer); leader: one replicator
//                   per follower (heartbeats go the same way), its RPC tasks, and the task
//                   that counts the leader's own durable entries toward commit;
//   handle()        runs as the caller's (the network's) task; counted so run() can wait for it.
// Every field of Node below is changed only in synchronous sections. After each co_await a
// role task checks its stamp (check_stamp): cancelled tasks leave, survivors assert the
// (term, role) they were started for still holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/channel.h"
#include "core/event.h"
#include "core/scope.h"
#include "core/task.h"
#include "net/message.h"
#include "net/rpc.h"
#include "net/types.h"
#include "raft/config.h"
#include "raft/durable_writer.h"
#include "raft/log.h"
#include "raft/quorum.h"
#include "raft/rules.h"
#include "raft/storage.h"

namespace uraft {

// A pre-candidate asks for pre-votes (Config::pre_vote) in its follower's term.
enum class Role : std::uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };

// The role's name in logs and INFO.
inline std::string_view to_string(Role role) {
  switch (role) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "unknown";
}

// One message on the apply stream, in log order: a committed command, or a snapshot that
// replaces everything up to its index (after InstallSnapshot). The lab's ApplyMsg.
struct ApplyMsg {
  enum class Kind : std::uint8_t { kCommand, kSnapshot };
  Kind kind = Kind::kCommand;
  LogIndex index;    // CommandIndex, or SnapshotIndex (last included index).
  Term term;         // The entry's term, or SnapshotTerm.
  std::string data;       // kCommand: the command.
  SnapshotData snapshot;  // kSnapshot: its bytes (read them a piece at a time).
};

struct StartResult {
  LogIndex index;  // Where the command will be, if it ever commits (0 if not leader).
  Term term;
  bool is_leader = false;
};

// How a leadership transfer ended (Node::transfer_leadership).
enum class TransferResult : std::uint8_t {
  kDone,        // The target leads a newer term.
  kNotLeader,   // This node does not lead (or is stopping).
  kBadTarget,   // Not another node of the cluster, or (kNoNode) no follower is up.
  kInProgress,  // Another transfer is under way.
  kFailed,      // Not done in time: this node leads on, or another node won.
};

struct NodeState {
  Term term;
  bool is_leader = false;
};

// What a service logs or reports about a node: read together, in one synchronous call.
struct NodeStatus {
  Role role = Role::kFollower;
  Term term;
  NodeId leader_id = kNoNode;  // The leader of `term` if known (self when leader).
  std::uint64_t changes = 0;   // change_count() at the time of reading.
};

class Node final : public RpcHandler {
 public:
  // A peer that starts as a follower from `recovered` (what `storage` held). It serves `rpc`
  // at once; run() must then be awaited (or spawned) until the node stops.
  Node(NodeId self, std::size_t cluster_size, RpcEndpoint& rpc, Storage& storage, Config config,
       RecoveredState recovered);
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node() override;

  // Runs until kill() or until the awaiting task is cancelled; then joins every task of the
  // node and every handler in flight. Rethrows a driver's error (after stopping the node).
  Task<void> run();

  // The lab API (Start, GetState, Snapshot, Kill).
  // If leader, appends `command` and returns where it will commit; returns at once.
  StartResult start(std::string command);
  NodeState state() const noexcept;
  // The service has a snapshot of everything up to and including `index` (which it was
  // given): trim the log up to it and persist the snapshot. A stale index is ignored.
  Task<void> snapshot(LogIndex index, SnapshotData data);
  // Where a service writes a large snapshot of everything up to `index` (which it was given)
  // before handing it to snapshot(): storage's, so that it is not held in memory. Null if
  // `index` is stale (a newer snapshot is in).
  std::unique_ptr<SnapshotSink> snapshot_sink(LogIndex index);
  // Stops at once: no more requests served or sent, the apply channel closes.
  void kill() noexcept;
  bool killed() const noexcept { return stopping_; }

  // Committed commands and installed snapshots, in order. Closed by kill(). With
  // Config::commit_noop_on_election it also carries the empty commands new leaders append:
  // the service skips them (an empty command is never a service's own).
  Channel<ApplyMsg>& apply_channel() noexcept { return apply_ch_; }

  // ReadIndex (Raft thesis §6.4): an index the caller may read its state machine at, once it
  // has applied that index, with linearizable results. As leader, once an entry of its current
  // term has committed (it waits for that), it records commit_index and confirms it is still
  // leader through one round of AppendEntries sent after the read arrived and answered in its
  // term by a majority; then returns the recorded index. Batched: every read arriving while no
  // round is in flight joins the next round; reads arriving during a round wait for the one
  // after it. nullopt when not leader, when leadership is lost or cannot be confirmed within
  // election_timeout_min, or when stopping: never a stale index. Cancellable (throws
  // Cancelled).
  Task<std::optional<LogIndex>> read_index();

  // Leadership transfer (Raft thesis §3.10). As leader: stop taking commands (start() refuses,
  // transferring() is true), bring `target`'s log up to ours, and send it TimeoutNow, so it
  // stands for election at once. kDone once this node hears from the target as leader of a
  // newer term. If this leadership outlives election_timeout_min the transfer is abandoned
  // (kFailed) and the leader takes commands again. kNoNode: the follower whose log matches
  // furthest, of those that answered within an election timeout. Cancellable.
  Task<TransferResult> transfer_leadership(NodeId target = kNoNode);
  bool transferring() const noexcept {
    return role_->role == Role::kLeader && role_->transfer_target != kNoNode;
  }

  // Role, term and leader changes, without polling: change_count() grows by one at every
  // change of role, term or known leader, and when a transfer starts or ends; wait_change(seen)
  // completes once it differs from
  // `seen` (at once if it already does, or when stopping). Cancellable.
  std::uint64_t change_count() const noexcept { return changes_; }
  NodeStatus status() const noexcept;
  Task<void> wait_change(std::uint64_t seen);

  Task<Message> handle(NodeId from, Message request) override;

  // Introspection for tests and invariant checks.
  NodeId id() const noexcept { return self_; }
  std::size_t cluster_size() const noexcept { return cluster_size_; }
  Role role() const noexcept { return role_->role; }
  Term current_term() const noexcept { return current_term_; }
  NodeId voted_for() const noexcept { return voted_for_; }
  // The hard state as of the last completed save (what a restart gets back).
  const HardState& durable_hard_state() const noexcept { return writer_.hard_durable(); }
  NodeId leader_id() const noexcept { return leader_id_; }
  const RaftLog& log() const noexcept { return log_; }
  LogIndex commit_index() const noexcept { return commit_index_; }
  LogIndex last_applied() const noexcept { return last_applied_; }
  // For a service's status report (uraftd INFO).
  // Leader: every node's match index by node id; the leader's own entry is how far its own
  // log is durable. Empty when not leader.
  std::vector<LogIndex> match_indexes() const;
  LogIndex snapshot_index() const noexcept { return log_.snapshot_index(); }
  Term snapshot_term() const noexcept { return log_.snapshot_term(); }
  // Entries held above the snapshot, and their command bytes.
  std::size_t log_entries() const noexcept { return log_.size(); }
  std::size_t log_bytes() const noexcept { return log_.bytes(); }
  // What the drivers did since the node started (benchmarks and INFO; never reset).
  struct Stats {
    std::uint64_t append_requests = 0;      // AppendEntries sent carrying entries,
    std::uint64_t append_entries = 0;       // and the entries they carried.
    std::uint64_t heartbeats = 0;           // AppendEntries sent empty.
    std::uint64_t log_writes = 0;           // Storage::append calls,
    std::uint64_t log_entries_written = 0;  // and the entries they wrote.
    std::uint64_t lease_reads = 0;          // read_index() answered by the lease, no round.
  };
  Stats stats() const noexcept;
  // Completed ReadIndex rounds since the node started (for tests and stats).
  std::uint64_t read_rounds() const noexcept { return read_gen_finished_; }

 private:
  // A snapshot a follower is receiving in chunks: from the leader of which term, its last
  // included index and term, where its bytes go (storage's sink), and how many it took
  // (the last chunk's may still be on its way to the sink: `writing`, and then no other chunk
  // of it is taken, so the sink sees one append at a time, in order).
  struct IncomingSnapshot {
    Term leader_term;
    LogIndex index;
    Term term;
    std::unique_ptr<SnapshotSink> sink;
    std::uint64_t size = 0;
    bool writing = false;
  };

  // The leader's view of one follower (Figure 2, Volatile state on leaders).
  struct Progress {
    LogIndex next_index;       // Next entry to send; at or below the snapshot: send the snapshot.
    LogIndex match_index;      // Highest entry known to match the leader's log.
    std::size_t inflight = 0;  // RPCs awaiting a reply.
    std::size_t payload_inflight = 0;  // Of those, the ones carrying entries or a snapshot,
    std::size_t payload_bytes_inflight = 0;  // and their command bytes.
    // The follower matched our log at its last reply: send new entries without waiting for
    // replies (next_index runs ahead of match_index), up to Config::append_window.
    bool pipelining = false;
    TimePoint last_send;
    TimePoint heard;  // The last reply in our term (check-quorum); the election at first.
    // Lease reads: when the latest request answered in our term left (min: none yet).
    TimePoint lease_from = TimePoint::min();
    // Sending the snapshot (next_index at or below it), one chunk at a time: the snapshot's
    // index and the offset of the next chunk. After a failed chunk, or failed entries, the
    // next one waits for resend_at (a heartbeat later).
    LogIndex snapshot_index;
    std::uint64_t snapshot_offset = 0;
    TimePoint resend_at;
    Event wake;            // Set when there may be something to send.
    // ReadIndex: the sequence number (RoleState::send_seq) of the last request sent, and the
    // highest one answered in this term (success or not: either shows the follower had not
    // moved to a newer term when it replied).
    std::uint64_t sent_seq = 0;
    std::uint64_t acked_seq = 0;
  };

  // A role held in one term: its stamp, its scope, and (leader) its per-follower state.
  // Retired roles live on until their scope is joined, so their tasks may refer to them.
  struct RoleState {
    RoleState(Role r, Term t, CancelToken parent, std::size_t cluster_size)
        : role(r), term(t), scope(parent), tally(cluster_size) {}
    Role role;
    Term term;
    Scope scope;
    VoteTally tally;                // Candidate: each voter's answer, the self-vote included.
    bool transfer = false;          // Candidate: standing at the leader's request (TimeoutNow).
    NodeId transfer_target = kNoNode;  // Leader: transferring leadership to this follower,
    std::uint64_t transfer_id = 0;     // in the transfer numbered so (Node::transfers_),
    Event transfer_wake;               // woken when a match index moves.
    // Leader: no lease reads once a transfer began (its target's election does not wait for
    // the lease to run out), for the rest of this leadership.
    bool lease_void = false;
    std::deque<Progress> progress;  // Leader: one per node id (the leader's own unused).
    // Leader, ReadIndex: every request sent gets the next send_seq; a read round needs a
    // majority to answer a request numbered read_round_seq or later (0: no round running).
    std::uint64_t send_seq = 0;
    std::uint64_t read_round_seq = 0;
    Event read_wake;  // Set when a read arrives, the commit index moves, or a reply counts.
  };

  struct Stamp {
    Term term;
    Role role;
  };
  static Stamp stamp_of(const RoleState& r) noexcept { return Stamp{r.term, r.role}; }

  struct HandlerCount;  // RAII: counts a handle() in flight.

  // --- node.cc: state changes (synchronous) ---
  // Figure 2, Rules for All Servers, 2, through the rules' observe_term: adopts a newer term,
  // clears the vote and steps down (the writer saves it). Returns whether it did.
  bool observe(Term msg_term);
  void become_follower();
  // A leader that lost its quorum (check-quorum): a follower in the same term, of no leader.
  void step_down();
  // Whether the leader and the followers whose Progress `holds` form a majority (the
  // counting of check-quorum, read rounds and leases; replicator.cc).
  template <typename Holds>
  bool leader_and_followers_where(const RoleState& role, Holds holds) const;
  // Check-quorum: a majority, the leader included, replied within election_timeout_min.
  bool quorum_heard(const RoleState& role, TimePoint now) const;
  // After an election timeout: a pre-candidacy (Config::pre_vote) or a candidacy.
  void stand_for_election();
  void become_pre_candidate();
  void become_candidate(bool transfer = false);
  void become_leader();
  void change_role(Role role, bool transfer = false);
  // A request from the leader of our term (AppendEntries, InstallSnapshot): a candidate
  // steps down (Figure 2, Candidates, 3); the election timer restarts.
  void recognize_leader(NodeId leader);
  void reset_election_timer();
  // Throws Cancelled if the task's role was cancelled; otherwise asserts the stamp holds.
  void check_stamp(const CancelToken& token, Stamp stamp) const;
  void truncate_log(LogIndex from);
  void spawn_role_task(Task<void> task);
  static Task<void> report_errors(Node* node, Task<void> task);
  static Task<void> reap(std::unique_ptr<RoleState> role);
  static void on_owner_cancel(void* self) noexcept;

  // --- node.cc: RPC handlers ---
  Task<Message> handle_request_vote(RequestVoteArgs args);
  Task<Message> handle_append_entries(AppendEntriesArgs args);
  Task<Message> handle_install_snapshot(InstallSnapshotArgs args);
  Task<Message> handle_timeout_now(TimeoutNowArgs args);
  // Takes the chunk into incoming_ if it starts a snapshot or follows what is there: the
  // snapshot it belongs to, or null.
  std::shared_ptr<IncomingSnapshot> receive_chunk(const InstallSnapshotArgs& args);
  // Writes the chunk `args` (taken into `in`) to the sink and, if it is the last, installs
  // the snapshot: true once installed (or no longer needed).
  Task<bool> store_chunk(std::shared_ptr<IncomingSnapshot> in, InstallSnapshotArgs args);
  // incoming_ holds chunks of the snapshot `args` is a chunk of.
  bool assembling(const InstallSnapshotArgs& args) const;
  // Installs a snapshot received whole, as the rules decided.
  void install_snapshot(SnapshotAction action, SnapshotRecord snapshot);

  // --- election.cc ---
  Task<void> run_follower(RoleState& role);
  // A pre-candidacy or a candidacy: asks for (pre-)votes until a majority grants, a majority
  // refuses, or the election timer fires.
  Task<void> run_campaign(RoleState& role);
  // Pre-vote: a leader, or a follower that heard from one within election_timeout_min.
  bool leader_recent() const;
  Task<bool> collect_votes(RoleState& role, RequestVoteArgs args);
  Task<bool> request_vote(RoleState& role, NodeId peer, RequestVoteArgs args);
  Duration random_election_timeout();

  // --- replicator.cc ---
  Task<void> replicate(RoleState& role, NodeId peer);
  // Wakes each replicator when its follower's heartbeat is due.
  Task<void> run_heartbeat_clock(RoleState& role);
  bool should_send(const RoleState& role, const Progress& p, TimePoint now) const;
  // Entries wait for p, and the window (or stop-and-wait) lets them go now.
  bool entries_to_send(const Progress& p) const;
  void send_to(RoleState& role, NodeId peer);
  // A follower behind the snapshot: its next chunk, or a heartbeat while a chunk is out.
  // False if the chunk cannot be read (then the caller sends a heartbeat instead).
  bool send_snapshot_to(RoleState& role, NodeId peer);
  Task<void> send_append(RoleState& role, NodeId peer, AppendEntriesArgs args,
                         std::size_t bytes, std::uint64_t seq);
  Task<void> send_snapshot(RoleState& role, NodeId peer, InstallSnapshotArgs args,
                           std::size_t bytes, std::uint64_t seq);
  // A reply in our term to request `seq` (ReadIndex counts it).
  void on_acked(RoleState& role, Progress& p, std::uint64_t seq, TimePoint sent);
  // Lease reads: whether the leader's lease holds now (Config::lease_reads).
  bool lease_holds(const RoleState& role, TimePoint now) const;
  void on_append_reply(RoleState& role, NodeId peer, LogIndex sent_last,
                       const AppendEntriesReply& reply);
  void on_match(RoleState& role, NodeId peer, LogIndex matched);
  // What failed or made no progress goes again after a heartbeat interval, not in a loop.
  void resend_later(Progress& p) const;
  void advance_leader_commit(RoleState& role);
  // The leader counts itself toward a majority for the entries on its own disk: after every
  // completed write it looks at the commit index again.
  Task<void> count_own_durable(RoleState& role);
  void wake_replicators(RoleState& role);

  // --- replicator.cc: leadership transfer ---
  // Brings `target` up to date, sends TimeoutNow, and abandons the transfer if this
  // leadership outlives election_timeout_min.
  Task<void> run_transfer(RoleState& role, NodeId target);
  NodeId most_caught_up_follower(const RoleState& role) const;

  // --- replicator.cc: ReadIndex ---
  // The leader's read-round driver: runs rounds while reads are waiting for one.
  Task<void> run_read_rounds(RoleState& role);
  bool read_round_confirmed(const RoleState& role) const;
  void finish_read_round(std::optional<LogIndex> result);
  void note_change();

  // --- applier.cc ---
  Task<void> run_applier();
  void set_commit_index(LogIndex index);

  const NodeId self_;
  const std::size_t cluster_size_;
  const Config config_;
  RpcEndpoint& rpc_;
  Storage& storage_;

  // Figure 2, persistent state: changed here first, then brought to storage by writer_,
  // whose watermarks say how much of it is durable; no reply depending on it leaves before.
  Term current_term_;
  NodeId voted_for_ = kNoNode;
  RaftLog log_;
  SnapshotRecord snapshot_;  // The latest snapshot (index 0: none), kept for InstallSnapshot.
  // Follower: the chunks of a leader's snapshot received so far (Figure 13, receiver 2-4).
  std::shared_ptr<IncomingSnapshot> incoming_;
  DurableWriter writer_;

  // Figure 2, volatile state.
  LogIndex commit_index_;
  LogIndex last_applied_;           // The last index handed to the apply channel.
  bool snapshot_to_apply_ = false;  // An installed snapshot the applier has not handed on.
  NodeId leader_id_ = kNoNode;
  TimePoint election_deadline_;  // Follower: when to stand for election.
  TimePoint leader_heard_;       // When leader_id_ was last heard from (recognize_leader).
  TimePoint started_;            // When this instance started (lease reads: a quiet start).

  Channel<ApplyMsg> apply_ch_;
  Event apply_wake_;
  Scope root_;
  std::unique_ptr<RoleState> role_;
  bool stopping_ = false;
  std::exception_ptr error_;  // The first error of a role task.
  std::size_t handlers_active_ = 0;
  Event handlers_idle_;

  // ReadIndex rounds, numbered across leaderships (they never go back): reads wait for round
  // read_gen_wanted_; the driver has started read_gen_started_ and finished
  // read_gen_finished_, whose outcome is read_result_ (nullopt: not confirmed).
  std::uint64_t read_gen_wanted_ = 0;
  std::uint64_t read_gen_started_ = 0;
  std::uint64_t read_gen_finished_ = 0;
  std::optional<LogIndex> read_result_;
  Event read_done_;  // Set when a round finishes and at every role change (waiters recheck).
  Event transfer_done_;  // Set when a transfer is abandoned and at every role change.
  std::uint64_t transfers_ = 0;  // Transfers started: each waiter waits for its own.
  std::uint64_t changes_ = 0;
  Event changed_;
  Stats stats_;
};

}  // namespace uraft
