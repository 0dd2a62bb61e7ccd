// Node: construction, the role machine, persistence and the RPC handlers. Elections are in
// election.cc, leaders' replication in replicator.cc, the apply stream in applier.cc.
#include "raft/node.h"

#include <algorithm>
#include <limits>
#include <span>
#include <utility>
#include <variant>

#include "core/assert.h"
#include "core/loop.h"
#include "raft/rules.h"

namespace uraft {

struct Node::HandlerCount {
  explicit HandlerCount(Node& n) : node(n) {
    if (node.handlers_active_++ == 0) node.handlers_idle_.reset();
  }
  ~HandlerCount() {
    if (--node.handlers_active_ == 0) node.handlers_idle_.set();
  }
  HandlerCount(const HandlerCount&) = delete;
  HandlerCount& operator=(const HandlerCount&) = delete;
  Node& node;
};

Node::Node(NodeId self, std::size_t cluster_size, RpcEndpoint& rpc, Storage& storage, Config config,
           RecoveredState recovered)
    : self_(self),
      cluster_size_(cluster_size),
      config_(config),
      rpc_(rpc),
      storage_(storage),
      writer_(storage, current_term_, voted_for_, log_),
      apply_ch_(config.apply_channel_capacity) {
  config_.validate();
  URAFT_ASSERT(cluster_size_ >= 1);
  URAFT_ASSERT(cluster_size_ <= kClusterSizeMax);
  URAFT_ASSERT(self_.value < cluster_size_);
  current_term_ = recovered.hard_state.current_term;
  voted_for_ = recovered.hard_state.voted_for;
  if (recovered.snapshot && recovered.snapshot->last_included_index > LogIndex{0}) {
    snapshot_ = std::move(*recovered.snapshot);
    log_.reset_to_snapshot(snapshot_.last_included_index, snapshot_.last_included_term);
  }
  log_.append(recovered.entries);
  // What the snapshot holds is committed and, by the service, applied (the lab's tester
  // ingests it before Make); the rest is learnt from the next leader.
  commit_index_ = last_applied_ = log_.snapshot_index();
  writer_.recovered(recovered.hard_state);
  handlers_idle_.set();
  started_ = Loop::current().now();
  root_.spawn(report_errors(this, writer_.run()));
  root_.spawn(report_errors(this, run_applier()));
  become_follower();
  rpc_.serve(this);
}

Node::~Node() {
  // Destroyed only after run() returned: it joined every task and handler of the node.
  URAFT_ASSERT(root_.active() == 0);
  URAFT_ASSERT(handlers_active_ == 0);
}

Task<void> Node::run() {
  // Cancelling the task that runs the node stops it.
  const CancelToken owner = co_await current_token();
  CancelCallback on_cancel;
  if (!owner.register_callback(on_cancel, &Node::on_owner_cancel, this)) kill();
  std::exception_ptr error;
  try {
    co_await root_.join();  // Returns once killed (or a task failed and cancelled the rest).
  } catch (...) {
    error = std::current_exception();
  }
  kill();
  try {
    co_await role_->scope.join();
    co_await root_.join();  // Reapers of roles retired while the first join waited.
  } catch (...) {
    if (!error) error = std::current_exception();
  }
  co_await handlers_idle_.wait_uncancellable();
  if (!error) error = error_;
  if (error) std::rethrow_exception(error);
}

void Node::on_owner_cancel(void* self) noexcept { static_cast<Node*>(self)->kill(); }

void Node::kill() noexcept {
  if (stopping_) return;
  stopping_ = true;
  rpc_.serve(nullptr);
  apply_ch_.close();
  root_.cancel();  // The role's scope is a child of root_: it goes too.
  read_done_.set();  // Waiting reads leave with nullopt,
  transfer_done_.set();  // and a waiting transfer with false.
  writer_.stop();     // Handlers waiting for a write leave (and reply nothing).
  changed_.set();
}

StartResult Node::start(std::string command) {
  // Raft thesis §3.10: a leader transferring its leadership takes no new commands, so the
  // target's log can catch up with a log that stands still.
  if (stopping_ || role_->role != Role::kLeader || transferring()) {
    return StartResult{LogIndex{0}, current_term_, false};
  }
  // Figure 2, Leaders, 2: append the command to the local log; the writer persists it and
  // the replicators send it.
  log_.append(LogEntry{current_term_, std::move(command)});
  writer_.wake();
  wake_replicators(*role_);
  return StartResult{log_.last_index(), current_term_, true};
}

NodeStatus Node::status() const noexcept {
  return NodeStatus{role_->role, current_term_, leader_id_, changes_};
}

Task<void> Node::wait_change(std::uint64_t seen) {
  while (changes_ == seen && !stopping_) {
    changed_.reset();
    co_await changed_.wait();
  }
}

void Node::note_change() {
  ++changes_;
  changed_.set();
}

std::vector<LogIndex> Node::match_indexes() const {
  std::vector<LogIndex> matches;
  if (stopping_ || role_->role != Role::kLeader) return matches;
  for (std::size_t i = 0; i < cluster_size_; ++i) {
    matches.push_back(NodeId{static_cast<std::uint32_t>(i)} == self_
                          ? writer_.log_durable()
                          : role_->progress[i].match_index);
  }
  return matches;
}

NodeState Node::state() const noexcept {
  return NodeState{current_term_, !stopping_ && role_->role == Role::kLeader};
}

Task<void> Node::snapshot(LogIndex index, SnapshotData data) {
  if (stopping_ || index <= log_.snapshot_index()) co_return;  // Stale: a newer one is in.
  URAFT_ASSERT(index <= last_applied_);  // The service snapshots only what it was given.
  const Term term = *log_.term_at(index);
  log_.compact_prefix(index);
  snapshot_ = SnapshotRecord{index, term, std::move(data)};
  writer_.queue_snapshot(snapshot_, SnapshotLogAction::kKeepSuffix);
  co_await writer_.snapshot_durable_to(index);
}

std::unique_ptr<SnapshotSink> Node::snapshot_sink(LogIndex index) {
  if (stopping_ || index <= log_.snapshot_index()) return nullptr;
  URAFT_ASSERT(index <= last_applied_);
  return storage_.snapshot_sink(index, *log_.term_at(index));
}

Node::Stats Node::stats() const noexcept {
  Stats stats = stats_;
  stats.log_writes = writer_.log_writes();
  stats.log_entries_written = writer_.log_entries_written();
  return stats;
}

// --- the role machine ---

bool Node::observe(Term msg_term) {
  const TermObservation o = observe_term(current_term_, msg_term);
  URAFT_ASSERT(o.new_term >= current_term_);
  if (!o.step_down) return false;
  current_term_ = o.new_term;
  voted_for_ = kNoNode;
  leader_id_ = kNoNode;
  writer_.wake();
  become_follower();
  return true;
}

void Node::become_follower() { change_role(Role::kFollower); }

void Node::step_down() {
  URAFT_ASSERT(role_->role == Role::kLeader);
  leader_id_ = kNoNode;
  become_follower();
}

void Node::stand_for_election() {
  if (config_.pre_vote) {
    become_pre_candidate();
  } else {
    become_candidate();
  }
}

void Node::become_pre_candidate() {
  // Raft thesis §9.6: the term and the vote stay; the leader is presumed gone.
  leader_id_ = kNoNode;
  change_role(Role::kPreCandidate);
}

void Node::become_candidate(bool transfer) {
  // Figure 2, Candidates, 1: increment currentTerm, vote for self (the campaign waits for
  // both to be durable before it sends anything).
  current_term_ = Term{current_term_.value + 1};
  voted_for_ = self_;
  leader_id_ = kNoNode;
  writer_.wake();
  change_role(Role::kCandidate, transfer);
}

void Node::become_leader() {
  URAFT_ASSERT(role_->role == Role::kCandidate);
  URAFT_ASSERT(voted_for_ == self_);
  leader_id_ = self_;
  change_role(Role::kLeader);
}

void Node::change_role(Role role, bool transfer) {
  URAFT_ASSERT(!stopping_);
  const bool was_follower = role_ && role_->role == Role::kFollower;
  if (role_) {
    // The old role's tasks are cancelled now; they finish (and are joined) later.
    role_->scope.cancel();
    root_.spawn(reap(std::move(role_)));
  }
  role_ = std::make_unique<RoleState>(role, current_term_, root_.token(), cluster_size_);
  RoleState& r = *role_;
  r.transfer = transfer;
  note_change();
  read_done_.set();  // Reads waiting for a round of the old role leave with nullopt.
  transfer_done_.set();
  switch (role) {
    case Role::kFollower:
      // Figure 2, Followers, 2: only the current leader or a granted vote moves the timer
      // on. A follower that merely learns of a newer term keeps its deadline, or a candidate
      // that cannot win (its log is behind) and times out first would hold every other node
      // back from campaigning, for ever. From another role, the timer starts afresh.
      if (!was_follower) reset_election_timer();
      spawn_role_task(run_follower(r));
      break;
    case Role::kPreCandidate:
    case Role::kCandidate:
      r.tally.record(self_, true);
      spawn_role_task(run_campaign(r));
      break;
    case Role::kLeader:
      // Figure 2, Volatile state on leaders, reinitialized after election. The campaign
      // waited for its log to be durable and a candidate's log does not change: the whole
      // log is durable here. The writer persists what start() adds.
      URAFT_ASSERT(writer_.log_durable() == log_.last_index());
      r.progress.resize(cluster_size_);
      for (std::size_t i = 0; i < cluster_size_; ++i) {
        Progress& p = r.progress[i];
        p.next_index = LogIndex{log_.last_index().value + 1};
        p.match_index = LogIndex{0};
        p.last_send = Loop::current().now() - config_.heartbeat_interval;  // Heartbeat now.
        p.heard = Loop::current().now();  // The vote: check-quorum counts from the election.
        if (NodeId{static_cast<std::uint32_t>(i)} != self_) {
          spawn_role_task(replicate(r, NodeId{static_cast<std::uint32_t>(i)}));
        }
      }
      spawn_role_task(count_own_durable(r));
      spawn_role_task(run_heartbeat_clock(r));
      spawn_role_task(run_read_rounds(r));
      if (config_.commit_noop_on_election) {
        // After next_index was set: the replicators send it as a new entry.
        log_.append(LogEntry{current_term_, std::string()});
        writer_.wake();
      }
      break;
  }
}

void Node::spawn_role_task(Task<void> task) {
  role_->scope.spawn(report_errors(this, std::move(task)));
}

Task<void> Node::report_errors(Node* node, Task<void> task) {
  try {
    co_await std::move(task);
  } catch (const Cancelled&) {
    throw;
  } catch (...) {
    // A driver failed: record it and stop the node; run() rethrows it.
    if (!node->error_) node->error_ = std::current_exception();
    node->kill();
  }
}

Task<void> Node::reap(std::unique_ptr<RoleState> role) { co_await role->scope.join(); }

void Node::recognize_leader(NodeId leader) {
  // Election Safety: one leader per term, so a leader never hears from another of its term.
  URAFT_ASSERT(role_->role != Role::kLeader);
  if (role_->role != Role::kFollower) become_follower();
  if (leader_id_ != leader) {
    leader_id_ = leader;
    note_change();
  }
  leader_heard_ = Loop::current().now();
  reset_election_timer();
}

void Node::check_stamp(const CancelToken& token, Stamp stamp) const {
  token.throw_if_cancelled();
  // Not cancelled, so no term or role change happened since the task started.
  URAFT_ASSERT(stamp.term == current_term_);
  URAFT_ASSERT(stamp.role == role_->role);
}

void Node::truncate_log(LogIndex from) {
  log_.truncate_suffix(from);
  writer_.log_cut(from);
}

// --- RPC handlers ---

Task<Message> Node::handle(NodeId from, Message request) {
  HandlerCount count(*this);
  (void)from;
  if (stopping_) {
    // Killed: refuse (term 0 never changes anyone's mind).
    if (std::holds_alternative<RequestVoteArgs>(request)) co_return RequestVoteReply{};
    if (std::holds_alternative<InstallSnapshotArgs>(request)) co_return InstallSnapshotReply{};
    if (std::holds_alternative<TimeoutNowArgs>(request)) co_return TimeoutNowReply{};
    co_return AppendEntriesReply{};
  }
  if (auto* a = std::get_if<RequestVoteArgs>(&request)) {
    co_return co_await handle_request_vote(std::move(*a));
  }
  if (auto* a = std::get_if<AppendEntriesArgs>(&request)) {
    co_return co_await handle_append_entries(std::move(*a));
  }
  if (auto* a = std::get_if<InstallSnapshotArgs>(&request)) {
    co_return co_await handle_install_snapshot(std::move(*a));
  }
  if (auto* a = std::get_if<TimeoutNowArgs>(&request)) {
    co_return co_await handle_timeout_now(*a);
  }
  co_return ClientReply{ClientReply::Status::kError, leader_id_, "not a raft request"};
}

// Every reply below claims something about this node's durable state, and the caller acts on
// it: a vote counts toward a leader of its term, a success toward a commit, a term toward the
// caller's own. Figure 2 says persistent state is updated on stable storage before
// responding; here each handler waits until the writer's watermarks cover its reply, however
// many handlers asked for the same write, and re-checks after every wake-up what may have
// changed meanwhile (a newer term turns the reply into a refusal in that term).

Task<Message> Node::handle_request_vote(RequestVoteArgs args) {
  bool grant = false;
  if (args.pre_vote) {
    // Raft thesis §9.6: a pre-vote changes neither term nor vote (nor the election timer).
    grant = decide_pre_vote(current_term_, log_, args, leader_recent()).grant;
  } else if (config_.check_quorum && !args.transfer && args.term > current_term_ &&
             leader_recent()) {
    // §4.2.3: a leader was heard from within election_timeout_min, so this candidate's
    // election is not needed (it may be a node back from a partition): disregard it, term
    // and all. A refusal in our own term, which is safe as any refusal.
  } else {
    observe(args.term);
    grant = decide_vote(current_term_, voted_for_, log_, args).grant;
    if (grant) {
      // A candidate or leader voted for itself; a pre-candidate had not voted in this term,
      // and gives up its pre-candidacy for the candidate it votes for.
      URAFT_ASSERT(role_->role == Role::kFollower || role_->role == Role::kPreCandidate);
      if (role_->role == Role::kPreCandidate) become_follower();
      voted_for_ = args.candidate_id;
      writer_.wake();
      // Figure 2, Followers, 2: granting a vote restarts the election timer.
      reset_election_timer();
    }
  }
  RequestVoteReply reply{current_term_, grant};
  for (;;) {
    if (stopping_) co_return RequestVoteReply{};
    // A vote is for one term: once the term moved on, refuse in the new one.
    if (reply.term != current_term_) reply = RequestVoteReply{current_term_, false};
    // Safe: a grant once the vote is durable (a restart cannot vote again in this term), a
    // refusal or a pre-vote (which promises nothing) once its term is (a restart cannot go
    // back to an older term).
    const bool vote = reply.vote_granted && !args.pre_vote;
    const HardState claim{reply.term, vote ? args.candidate_id : kNoNode};
    if (writer_.covers(claim, LogIndex{0})) co_return reply;
    co_await writer_.next_write();
  }
}

Task<Message> Node::handle_append_entries(AppendEntriesArgs args) {
  observe(args.term);
  AppendEntriesReply reply{current_term_, false, Term{0}, LogIndex{0}, LogIndex{0}, LogIndex{0}};
  // The leader of our term (Election Safety): any reply in this term tells it we heard from
  // it (check-quorum, and the lease it may read under), so recognize it first.
  if (args.term == current_term_) recognize_leader(args.leader_id);
  if (!is_well_formed(args)) {
    // Wire input that no correct leader sends: refuse without looking further.
    reply.log_length = LogIndex{log_.last_index().value + 1};
  } else {
    const AppendDecision d = decide_append(log_, current_term_, commit_index_, args);
    if (d.truncate_from) truncate_log(*d.truncate_from);
    if (d.append_from < args.entries.size()) {
      log_.append_moved(std::span(args.entries).subspan(d.append_from));
      writer_.wake();
    }
    set_commit_index(d.commit_index);
    reply = d.reply;
  }
  for (;;) {
    if (stopping_) co_return AppendEntriesReply{};
    if (reply.term != current_term_) {
      // A newer term arrived while waiting: what matched the old leader says nothing now.
      reply = AppendEntriesReply{current_term_, false, Term{0}, LogIndex{0},
                                 LogIndex{log_.last_index().value + 1}, LogIndex{0}};
    }
    // Safe: the term is durable, and a success only once every entry up to match_index is
    // on disk as in our log (the leader counts them toward commit). Entries a former leader
    // sent and this node has not written yet are written by the same writer first.
    if (writer_.covers(HardState{reply.term, kNoNode},
                       reply.success ? reply.match_index : LogIndex{0})) {
      co_return reply;
    }
    co_await writer_.next_write();
  }
}

Task<Message> Node::handle_install_snapshot(InstallSnapshotArgs args) {
  observe(args.term);
  InstallSnapshotReply reply{current_term_};
  if (args.term == current_term_) {
    recognize_leader(args.leader_id);
    if (decide_install_snapshot(log_, current_term_, commit_index_, args) == SnapshotAction::kIgnore) {
      // Everything it holds is committed here already: the rest of it is not needed (and a
      // newer snapshot being assembled is kept).
      if (incoming_ && incoming_->index <= args.last_included_index) incoming_.reset();
      reply.installed = true;
    } else if (std::shared_ptr<IncomingSnapshot> in = receive_chunk(args)) {
      // Where the next chunk starts claims nothing durable: if this one is lost on its way
      // to the sink, the next chunk finds the snapshot gone and the leader starts over.
      reply.next_offset = in->size;
      const IncomingSnapshot* held = in.get();
      reply.installed = co_await store_chunk(std::move(in), std::move(args));
      if (!reply.installed && incoming_.get() != held) reply.next_offset = 0;  // Dropped.
    } else {
      // Not the chunk that follows ours (one was lost, or we restarted): say where we stand
      // in this snapshot (0: from its start).
      reply.next_offset = assembling(args) ? incoming_->size : 0;
    }
  }
  for (;;) {
    if (stopping_) co_return InstallSnapshotReply{};
    if (reply.term != current_term_) reply = InstallSnapshotReply{current_term_};
    // Safe: the term is durable, and "installed" (the leader counts our match index at the
    // snapshot) only once the log is durable up to it: a save completed, or the committed
    // entries it covers are written.
    if (writer_.covers(HardState{reply.term, kNoNode},
                       reply.installed ? args.last_included_index : LogIndex{0})) {
      co_return reply;
    }
    co_await writer_.next_write();
  }
}

Task<bool> Node::store_chunk(std::shared_ptr<IncomingSnapshot> in, InstallSnapshotArgs args) {
  // The sink takes nothing else until this chunk is in (and, for the last, finished).
  struct Writing {
    IncomingSnapshot& in;
    explicit Writing(IncomingSnapshot& s) : in(s) { in.writing = true; }
    ~Writing() { in.writing = false; }
  };
  const Writing writing(*in);
  bool stored = true;
  try {
    co_await in->sink->append(std::move(args.data));
  } catch (const std::runtime_error&) {
    stored = false;  // Storage cannot take it (a full disk): the leader will start over.
  }
  if (stored && args.done && in->sink->crc() != args.crc) stored = false;  // Not the leader's bytes.
  if (!stored) {
    if (incoming_ == in) incoming_.reset();
    co_return false;
  }
  if (!args.done) co_return false;
  SnapshotData data;
  try {
    data = co_await in->sink->finish();
  } catch (const std::runtime_error&) {
    stored = false;
  }
  // Across the writes: the node may have stopped, moved to a newer term, started on another
  // snapshot, or committed past this one.
  if (!stored || stopping_ || incoming_ != in || current_term_ != args.term) {
    if (incoming_ == in) incoming_.reset();
    co_return false;
  }
  incoming_.reset();
  const SnapshotAction action = decide_install_snapshot(log_, current_term_, commit_index_, args);
  if (action != SnapshotAction::kIgnore) {
    install_snapshot(action, SnapshotRecord{args.last_included_index, args.last_included_term,
                                            std::move(data)});
  }
  co_return true;
}

Task<Message> Node::handle_timeout_now(TimeoutNowArgs args) {
  observe(args.term);
  if (args.term == current_term_ && role_->role != Role::kLeader &&
      log_.last_index() == args.last_log_index) {
    // Raft thesis §3.10: the leader of our term brought our log up to its own and steps
    // aside: stand at once, without waiting for the timer or asking for pre-votes. Voters
    // that heard from that leader lately grant anyway (RequestVoteArgs::transfer).
    become_candidate(true);
  }
  for (;;) {
    if (stopping_) co_return TimeoutNowReply{};
    // Safe: the reply claims only our term, once it is durable.
    const TimeoutNowReply reply{current_term_};
    if (writer_.covers(HardState{reply.term, kNoNode}, LogIndex{0})) co_return reply;
    co_await writer_.next_write();
  }
}

std::shared_ptr<Node::IncomingSnapshot> Node::receive_chunk(const InstallSnapshotArgs& args) {
  // Figure 13, receiver, 2-4: a chunk at offset 0 starts a new snapshot (in a new sink: the
  // old one's bytes are dropped); a later one must follow what we hold of the same snapshot
  // from the same leader.
  if (args.offset == 0) {
    // A late duplicate of an older snapshot from this leader does not replace a newer one.
    if (incoming_ && incoming_->leader_term == args.term &&
        incoming_->index > args.last_included_index) {
      return nullptr;
    }
    incoming_ = std::make_shared<IncomingSnapshot>(IncomingSnapshot{
        args.term, args.last_included_index, args.last_included_term,
        storage_.snapshot_sink(args.last_included_index, args.last_included_term)});
  } else if (!assembling(args) || incoming_->writing || incoming_->size != args.offset) {
    return nullptr;
  }
  incoming_->size += args.data.size();
  return incoming_;
}

bool Node::assembling(const InstallSnapshotArgs& args) const {
  return incoming_ && incoming_->leader_term == args.term &&
         incoming_->index == args.last_included_index &&
         incoming_->term == args.last_included_term;
}

void Node::install_snapshot(SnapshotAction action, SnapshotRecord snapshot) {
  const LogIndex index = snapshot.last_included_index;
  const Term term = snapshot.last_included_term;
  SnapshotLogAction log_action = SnapshotLogAction::kKeepSuffix;
  if (action == SnapshotAction::kKeepSuffix) {
    log_.compact_prefix(index);
  } else {
    URAFT_ASSERT(action == SnapshotAction::kReplaceLog);
    // Entries past the commit index may be gone with the log: storage's copy of them no
    // longer counts as durable.
    writer_.log_cut(LogIndex{commit_index_.value + 1});
    log_.reset_to_snapshot(index, term);
    log_action = SnapshotLogAction::kDiscardLog;
  }
  // Figure 13, receiver, 8: reset the state machine from the snapshot: the applier hands it
  // on before anything after it; commit and apply move up to it.
  snapshot_ = std::move(snapshot);
  writer_.queue_snapshot(snapshot_, log_action);
  snapshot_to_apply_ = true;
  set_commit_index(index);
}

}  // namespace uraft
