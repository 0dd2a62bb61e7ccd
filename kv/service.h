// Service: the glue between uraftd's clients and its Raft node. It takes jobs — one client's
// run of pipelined commands — and answers them linearizably: writes from every connection are
// gathered into one batch per loop turn and proposed as one log entry, answered once applied;
// reads wait for a ReadIndex (one quorum round serves every read waiting for it) and are
// served from the store once it has applied that index. A follower forwards each job to the
// leader over the peer connection (ClientRequest / ClientReply); with no leader known it
// answers -TRYAGAIN at once. It also feeds the apply stream into the store, snapshots the store
// when the log grows past a threshold, restores from snapshots, and logs role changes.
//
// Who owns what: the service owns the store and its counters; every field changes in
// synchronous sections of its tasks (applier, proposer, watcher, sweeper) or of execute().
// Jobs are shared with the connection that made them: a connection may go away while its job
// is in a batch, and the job still receives its replies (which nobody reads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/event.h"
#include "core/scope.h"
#include "core/task.h"
#include "kv/batch.h"
#include "kv/snapshot_child.h"
#include "kv/store.h"
#include "net/rpc.h"
#include "raft/node.h"

namespace uraft::kv {

// A job still unanswered after this long gets an error (its leader lost its quorum, or a
// forwarded request got no answer). Well above an election (at most 1 s in production()).
inline constexpr Duration kJobTimeout = std::chrono::seconds(5);
// How long after a failed snapshot (a full disk, a failed fork) the next is tried.
inline constexpr std::chrono::seconds kSnapshotRetry{1};
// How long a follower waits for the leader's answer to a forwarded job.
inline constexpr Duration kForwardTimeout = std::chrono::seconds(3);
// How long a write queued on a leader that handed its leadership over waits to learn the
// next leader (a transfer takes a round trip or two) before it fails with TRYAGAIN.
inline constexpr Duration kRerouteWait = std::chrono::seconds(1);
// Command bytes the proposer puts in one log entry (more jobs wait for the next entry; one
// job alone may exceed it). Below Config::production().append_bytes_max, so one entry per
// AppendEntries round at full load, and an fsync of a modest size.
inline constexpr std::size_t kEntryBytesTarget = std::size_t{512} << 10;
// Log entries proposed but not yet applied; beyond it new jobs wait for room. Bounds the
// memory of a leader that lost its quorum and keeps taking writes.
inline constexpr std::size_t kProposalsInflightMax = 4096;

enum class Access : std::uint8_t { kRead = 1, kWrite = 2 };

// One client's commands, answered together: all reads (served at a read index), or any
// writes among them (then all go through the log, so reads after a write in the same
// pipeline see it).
struct Job {
  Access access = Access::kRead;
  std::string batch;       // The commands, as one log entry (kv/batch.h).
  std::size_t commands = 0;
  BatchReplies replies;    // Once done: one reply per command, in order.
  bool done = false;
  Event finished;          // Set when done.
  TimePoint deadline;      // Set by the service when it takes the job.
};

struct ServiceOptions {
  std::size_t snapshot_log_bytes = 0;  // Snapshot once the log holds this many bytes.
  // Serialize snapshots in a forked child (kv/snapshot_child.h) while the applier goes on;
  // otherwise on a helper thread while it waits. Only on a real loop (not on virtual time).
  bool snapshot_in_child = false;
  std::vector<std::string> client_addresses;  // By node id (may be empty), for INFO.
};

// Counters only grow; read at any time on the loop (INFO).
struct ServiceCounters {
  std::uint64_t jobs = 0;
  std::uint64_t write_commands = 0;    // Commands proposed here (as leader).
  std::uint64_t read_commands = 0;     // Commands served at a read index here.
  std::uint64_t entries_proposed = 0;  // Log entries proposed (batches).
  std::uint64_t entries_applied = 0;   // Non-empty entries applied to the store.
  std::uint64_t read_index_failures = 0;
  std::uint64_t forwarded = 0;         // Jobs sent to the leader.
  std::uint64_t forward_failures = 0;
  std::uint64_t served_for_peers = 0;  // Jobs forwarded here by followers.
  std::uint64_t tryagain = 0;          // Jobs answered -TRYAGAIN.
  std::uint64_t timeouts = 0;          // Jobs answered after kJobTimeout.
  std::uint64_t snapshots_taken = 0;
  std::uint64_t snapshot_failures = 0;  // Snapshots abandoned (storage or the child failed).
  std::int64_t snapshot_fork_usec = -1;  // How long the last fork() stalled the loop (-1: none).
  std::uint64_t snapshots_restored = 0;
  std::uint64_t bad_entries = 0;       // Entries the batch decoder refused.
};

class Service final : public RpcHandler {
 public:
  // Restores the store from the snapshot `node` starts from, if any. Throws
  // std::runtime_error if that snapshot is corrupt (uraftd refuses to start on it).
  Service(Node& node, RpcEndpoint& rpc, ServiceOptions options,
          const std::optional<SnapshotRecord>& snapshot);
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  ~Service() override;

  // Serves `rpc` from now on: Raft's messages go to the node, ClientRequests to execute().
  void serve();

  // The applier, the proposer, the role watcher and the timeout sweeper; runs until the node
  // is killed or the awaiting task is cancelled. Fails every job still waiting on the way out.
  Task<void> run();

  // Answers `job` (sets its replies and done): as leader through the log or a read index, as
  // follower through the leader. Never throws but Cancelled; errors become error replies.
  Task<void> execute(std::shared_ptr<Job> job);

  Task<Message> handle(NodeId from, Message request) override;

  const Store& store() const noexcept { return store_; }
  const Node& node() const noexcept { return node_; }
  // Hands this leader's leadership to `target` (kNoNode: the most caught-up follower); writes
  // wait meanwhile and go on here if it is abandoned (Node::transfer_leadership).
  Task<TransferResult> transfer_leadership(NodeId target) {
    return node_.transfer_leadership(target);
  }
  const ServiceCounters& counters() const noexcept { return counters_; }
  LogIndex applied_index() const noexcept { return applied_; }
  std::size_t proposals_inflight() const noexcept { return inflight_.size(); }
  // The client address of `id` from the options, or "" if unknown.
  std::string client_address(NodeId id) const;

 private:
  // A log entry proposed by this node: where and in which term, and the jobs in it.
  struct Proposal {
    Term term;
    std::vector<std::shared_ptr<Job>> jobs;
  };

  Task<void> execute_local(std::shared_ptr<Job> job);
  Task<void> forward(std::shared_ptr<Job> job);
  static Task<std::optional<RpcResult>> call_leader(Service* self, NodeId leader, Message request);
  static Task<std::optional<RpcResult>> leader_changed(Service* self, NodeId leader);
  Task<void> wait_applied(LogIndex index);
  Task<void> wait_done(std::shared_ptr<Job> job);
  void serve_reads(Job& job);

  static Task<void> run_applier(Service* self, Scope* tasks);
  static Task<void> run_proposer(Service* self);
  static Task<void> run_watcher(Service* self);
  static Task<void> run_sweeper(Service* self);
  // Writes queued but never proposed when this node stopped leading (a transfer held them):
  // each goes to the next leader once one is known, or fails after kRerouteWait.
  static Task<void> run_rerouter(Service* self, Scope* tasks);
  static Task<void> reroute(Service* self, std::shared_ptr<Job> job);
  static Task<Message> handle_client_request(Service* self, ClientRequest request);

  // Applies one committed entry and settles the proposal at its index, if ours.
  void apply_entry(const ApplyMsg& msg);
  Task<void> apply_snapshot(ApplyMsg msg);
  Task<void> maybe_snapshot(Scope& tasks);
  // Writes the snapshot of everything up to `index` into `sink` (what `child` serializes, or
  // else `bytes`) and hands it to the node.
  static Task<void> store_snapshot(Service* self, LogIndex index, std::unique_ptr<SnapshotSink> sink,
                                   std::unique_ptr<ChildSnapshot> child, std::string bytes,
                                   TimePoint started);
  // A snapshot could not be made: logged, counted, tried again after kSnapshotRetry.
  void snapshot_failed(LogIndex index, std::string_view why);
  void propose_queued();
  // Fails the proposals whose entry is no longer in the node's log at its index.
  void fail_cut_proposals();
  // Fails, with an unknown outcome, the proposals at indexes below `end`.
  void fail_proposals_below(std::uint64_t end);
  // Completes `job` with the same error reply for each of its commands.
  void fail(Job& job, std::string_view error);
  void fail_all(std::string_view error);
  static void finish(Job& job);

  Node& node_;
  RpcEndpoint& rpc_;
  const ServiceOptions options_;
  Store store_;
  LogIndex applied_;            // The last index the store reflects (applier).
  LogIndex last_snapshot_;      // The index of the last snapshot taken or restored.
  bool snapshotting_ = false;   // A snapshot is being written.
  TimePoint snapshot_retry_at_ = TimePoint::min();  // After a failed one.
  Event applied_moved_;         // Set (and reset) each time applied_ grows.
  std::deque<std::shared_ptr<Job>> write_queue_;  // Not yet proposed.
  std::deque<std::shared_ptr<Job>> reroute_;      // Not proposed here: for the next leader.
  Event reroute_wake_;
  Event proposer_wake_;
  Event room_;                  // Set when inflight_ drops below kProposalsInflightMax.
  std::map<std::uint64_t, Proposal> inflight_;    // By log index.
  // Jobs taken by execute_local, oldest first (so deadlines ascend): the sweeper fails the
  // expired ones still waiting and drops the finished ones from the front.
  std::deque<std::weak_ptr<Job>> waiting_;
  BatchReplies replies_;        // The applier's scratch.
  ServiceCounters counters_;
  bool stopping_ = false;
};

// The reply payload of a forwarded job: the count, then each reply's length, then the bytes
// (integers u32 little-endian). decode_replies refuses anything malformed.
[[nodiscard]] std::string encode_replies(const BatchReplies& replies);
[[nodiscard]] bool decode_replies(std::string_view payload, BatchReplies& out);

}  // namespace uraft::kv
