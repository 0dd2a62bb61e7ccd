#include "kv/service.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <functional>
#include <limits>
#include <stdexcept>
#include <thread>
#include <string_view>
#include <utility>
#include <variant>

#include "core/assert.h"
#include "core/loop.h"
#include "core/post.h"
#include "core/scope.h"
#include "core/when.h"
#include "kv/resp.h"
#include "net/little_endian.h"

namespace uraft::kv {
namespace {

// How often the sweeper looks for jobs past their deadline.
constexpr Duration kSweepInterval = std::chrono::milliseconds(100);
// A sweeper wake-up later than this is logged (a third of the shortest election timeout).
constexpr Duration kLoopStallWarning = std::chrono::milliseconds(150);

constexpr std::string_view kErrNoLeader = "TRYAGAIN no leader";
constexpr std::string_view kErrNotApplied =
    "TRYAGAIN leadership changed before the command committed; it was not applied";
constexpr std::string_view kErrUnknownOutcome =
    "TRYAGAIN leadership changed; the command may or may not have been applied";
constexpr std::string_view kErrTimeout =
    "TRYAGAIN timed out waiting for the cluster; a write may or may not have been applied";
constexpr std::string_view kErrStopping = "TRYAGAIN node shutting down";
constexpr std::string_view kErrReadIndex =
    "TRYAGAIN leadership lost or not confirmed by a quorum; retry";

void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  store_le(b, v, 4);
  out.append(b, 4);
}

std::uint32_t get_u32(std::string_view in, std::size_t at) {
  return static_cast<std::uint32_t>(load_le(reinterpret_cast<const std::byte*>(in.data() + at), 4));
}

// Runs `work` on a helper thread and completes when it has returned; the loop keeps turning
// meanwhile (heartbeats, elections, reads). For serializing and restoring the store, which
// take long enough with many keys (hundreds of ms) that a leader blocked on them would lose
// its leadership. On virtual time it runs inline instead: a thread would make the simulated
// run depend on real time. The caller guarantees that nothing on the loop writes what `work`
// touches until this completes (the applier is the store's only writer, and it is the
// caller). Not cancellable: the thread's work cannot be abandoned half-way.
struct HelperDone {
  Event done;
};

// Reads a snapshot's bytes for Store::restore, a piece at a time.
SnapshotReader reader_of(const SnapshotData& data) {
  return [&data](std::uint64_t offset, std::span<char> out) { data.source()->read(offset, out); };
}

Task<void> run_on_helper_thread(std::function<void()> work) {
  Loop& loop = Loop::current();
  if (loop.uring_backend() == nullptr) {
    work();
    co_return;
  }
  PostQueue& queue = loop.post_queue();
  auto state = std::make_shared<HelperDone>();
  std::thread helper([state, &queue, work = std::move(work)] {
    work();
    queue.post([state] { state->done.set(); });
  });
  co_await state->done.wait_uncancellable();
  helper.join();
}

}  // namespace

std::string encode_replies(const BatchReplies& replies) {
  std::string out;
  out.reserve(4 + 4 * replies.size() + replies.bytes.size());
  put_u32(out, static_cast<std::uint32_t>(replies.size()));
  for (std::size_t i = 0; i < replies.size(); ++i) {
    put_u32(out, static_cast<std::uint32_t>(replies.reply(i).size()));
  }
  out += replies.bytes;
  return out;
}

bool decode_replies(std::string_view payload, BatchReplies& out) {
  out.clear();
  if (payload.size() < 4) return false;
  const std::uint64_t count = get_u32(payload, 0);
  if (count > kBatchCommandsMax || payload.size() - 4 < 4 * count) return false;
  const std::size_t body = 4 + 4 * static_cast<std::size_t>(count);
  std::size_t end = 0;
  for (std::size_t i = 0; i < count; ++i) {
    end += get_u32(payload, 4 + 4 * i);
    if (end > payload.size() - body) return false;
    out.ends.push_back(end);
  }
  if (end != payload.size() - body) return false;
  out.bytes.assign(payload.substr(body));
  return true;
}

Service::Service(Node& node, RpcEndpoint& rpc, ServiceOptions options,
                 const std::optional<SnapshotRecord>& snapshot)
    : node_(node), rpc_(rpc), options_(std::move(options)) {
  URAFT_ASSERT(options_.snapshot_log_bytes > 0);
  room_.set();
  if (snapshot && snapshot->last_included_index > LogIndex{0}) {
    const SnapshotData& data = snapshot->data;
    if (std::optional<SnapshotError> e = store_.restore(data.size(), reader_of(data))) {
      throw std::runtime_error("the stored snapshot at index " +
                               std::to_string(snapshot->last_included_index.value) +
                               " is corrupt (" + std::string(to_string(*e)) + ")");
    }
    applied_ = last_snapshot_ = snapshot->last_included_index;
    ++counters_.snapshots_restored;
    spdlog::info("restored snapshot at index {} ({} keys, {} bytes)", applied_.value,
                 store_.stats().keys, snapshot->data.size());
  }
}

Service::~Service() = default;

void Service::serve() { rpc_.serve(this); }

std::string Service::client_address(NodeId id) const {
  if (id == kNoNode || id.value >= options_.client_addresses.size()) return "";
  return options_.client_addresses[id.value];
}

Task<void> Service::run() {
  Scope scope(co_await current_token());
  scope.spawn(run_proposer(this));
  scope.spawn(run_watcher(this));
  scope.spawn(run_sweeper(this));
  scope.spawn(run_rerouter(this, &scope));
  std::exception_ptr error;
  try {
    co_await run_applier(this, &scope);  // Returns once the node is killed (its apply channel closes).
  } catch (...) {
    error = std::current_exception();
  }
  stopping_ = true;
  fail_all(kErrStopping);
  scope.cancel();
  co_await scope.close();
  if (error) std::rethrow_exception(error);
}

// --- jobs ---------------------------------------------------------------------------------

Task<void> Service::execute(std::shared_ptr<Job> job) {
  ++counters_.jobs;
  job->deadline = Loop::current().now() + kJobTimeout;
  if (stopping_) {
    fail(*job, kErrStopping);
    co_return;
  }
  const NodeStatus status = node_.status();
  if (status.role == Role::kLeader) {
    co_await execute_local(job);
  } else if (status.leader_id == kNoNode || status.leader_id == node_.id()) {
    ++counters_.tryagain;
    fail(*job, kErrNoLeader);
  } else {
    co_await forward(job);
  }
}

Task<void> Service::execute_local(std::shared_ptr<Job> job) {
  waiting_.push_back(job);
  if (job->access == Access::kRead) {
    // Raft thesis §6.4: the read index confirms leadership after the read arrived, so the
    // state at that index includes every write acknowledged before the read.
    const std::optional<LogIndex> index = co_await node_.read_index();
    if (job->done) co_return;  // Timed out meanwhile.
    if (!index) {
      ++counters_.read_index_failures;
      ++counters_.tryagain;
      fail(*job, kErrReadIndex);
      co_return;
    }
    co_await wait_applied(*index);
    if (job->done) co_return;
    serve_reads(*job);
    co_return;
  }
  while (inflight_.size() >= kProposalsInflightMax && !job->done && !stopping_) {
    room_.reset();
    co_await room_.wait();
  }
  if (job->done) co_return;
  if (stopping_) {
    fail(*job, kErrStopping);
    co_return;
  }
  write_queue_.push_back(job);
  proposer_wake_.set();
  co_await wait_done(job);
}

Task<void> Service::wait_done(std::shared_ptr<Job> job) {
  co_await job->finished.wait();
}

Task<void> Service::wait_applied(LogIndex index) {
  // applied_moved_ is set and reset by whoever moves applied_ (or ends a wait early): each
  // wake-up re-checks.
  while (applied_ < index && !stopping_) co_await applied_moved_.wait();
}

void Service::serve_reads(Job& job) {
  DecodedBatch decoded;
  job.replies.clear();
  if (std::optional<BatchError> e = decode_batch(job.batch, decoded)) {
    fail(job, "ERR internal error: bad read batch");
    return;
  }
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    store_.read(decoded.command(i), job.replies.bytes);
    job.replies.ends.push_back(job.replies.bytes.size());
  }
  counters_.read_commands += decoded.size();
  finish(job);
}

Task<std::optional<RpcResult>> Service::call_leader(Service* self, NodeId leader,
                                                    Message request) {
  co_return co_await self->rpc_.call(leader, std::move(request), kForwardTimeout);
}

Task<std::optional<RpcResult>> Service::leader_changed(Service* self, NodeId leader) {
  while (self->node_.leader_id() == leader && !self->node_.killed()) {
    co_await self->node_.wait_change(self->node_.change_count());
  }
  co_return std::nullopt;
}

Task<void> Service::forward(std::shared_ptr<Job> job) {
  ++counters_.forwarded;
  ClientRequest request;
  request.payload.reserve(1 + job->batch.size());
  request.payload.push_back(static_cast<char>(job->access));
  request.payload += job->batch;
  NodeId hint = kNoNode;  // A stale leader's hint, followed once.
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (node_.role() == Role::kLeader) {  // Became leader meanwhile; nothing was proposed yet.
      co_await execute_local(job);
      co_return;
    }
    const NodeId leader = hint != kNoNode ? hint : node_.leader_id();
    hint = kNoNode;
    if (leader == kNoNode || leader == node_.id()) break;
    // The call races this node's view of the leader: once it changes (the leader is suspected
    // dead, or was replaced), waiting longer for that leader helps nobody.
    std::vector<Task<std::optional<RpcResult>>> race;
    race.push_back(call_leader(this, leader, Message(request)));
    race.push_back(leader_changed(this, leader));
    AnyResult<std::optional<RpcResult>> first = co_await when_any(std::move(race));
    if (job->done) co_return;
    if (!first.value) {
      // The old leader may have taken a write before it went: only reads are safe to retry.
      if (job->access == Access::kRead) continue;
      ++counters_.forward_failures;
      ++counters_.tryagain;
      fail(*job, kErrUnknownOutcome);
      co_return;
    }
    const RpcResult& result = *first.value;
    if (!result.ok()) {
      ++counters_.forward_failures;
      ++counters_.tryagain;
      const std::string error = std::string("TRYAGAIN leader (node ") +
                                std::to_string(leader.value) + ") unreachable: " +
                                std::string(to_string(result.error)) +
                                "; a write may or may not have been applied";
      fail(*job, error);
      co_return;
    }
    const auto* reply = std::get_if<ClientReply>(&*result.reply);
    if (reply == nullptr) {
      ++counters_.forward_failures;
      fail(*job, "ERR the leader answered a forwarded request with the wrong message");
      co_return;
    }
    if (reply->status == ClientReply::Status::kOk) {
      if (!decode_replies(reply->payload, job->replies) || job->replies.size() != job->commands) {
        ++counters_.forward_failures;
        fail(*job, "ERR the leader's answer to a forwarded request is malformed");
        co_return;
      }
      finish(*job);
      co_return;
    }
    if (reply->status == ClientReply::Status::kError) {
      ++counters_.forward_failures;
      fail(*job, "ERR the leader refused a forwarded request as malformed");
      co_return;
    }
    // Not the leader (any more): it was never proposed there, so trying again is safe.
    if (reply->leader_hint != leader && reply->leader_hint != node_.id()) {
      hint = reply->leader_hint;
    }
  }
  ++counters_.tryagain;
  fail(*job, kErrNoLeader);
}

Task<Message> Service::handle(NodeId from, Message request) {
  if (auto* client = std::get_if<ClientRequest>(&request)) {
    co_return co_await handle_client_request(this, std::move(*client));
  }
  co_return co_await node_.handle(from, std::move(request));
}

Task<Message> Service::handle_client_request(Service* self, ClientRequest request) {
  ++self->counters_.served_for_peers;
  ClientReply reply;
  if (self->stopping_ || self->node_.role() != Role::kLeader) {
    reply.status = ClientReply::Status::kNotLeader;
    reply.leader_hint = self->stopping_ ? kNoNode : self->node_.leader_id();
    co_return reply;
  }
  // A peer's bytes are input like a client's: check them before they can reach a log entry
  // that other clients' commands share.
  const std::string_view payload = request.payload;
  DecodedBatch decoded;
  if (payload.empty() ||
      (payload[0] != static_cast<char>(Access::kRead) &&
       payload[0] != static_cast<char>(Access::kWrite)) ||
      payload.size() == 1 || decode_batch(payload.substr(1), decoded).has_value() ||
      decoded.size() == 0) {
    reply.status = ClientReply::Status::kError;
    co_return reply;
  }
  auto job = std::make_shared<Job>();
  job->access = static_cast<Access>(payload[0]);
  job->commands = decoded.size();
  job->batch.assign(payload.substr(1));
  job->deadline = Loop::current().now() + kJobTimeout;
  co_await self->execute_local(job);
  reply.payload = encode_replies(job->replies);
  co_return reply;
}

// --- proposing ----------------------------------------------------------------------------

Task<void> Service::run_proposer(Service* self) {
  for (;;) {
    co_await self->proposer_wake_.wait();
    self->proposer_wake_.reset();
    self->propose_queued();
  }
}

void Service::propose_queued() {
  // A transfer of leadership holds writes back (the node would refuse them); they go on here
  // if it is abandoned (the watcher wakes the proposer), and fail as not proposed if it
  // succeeds.
  if (node_.transferring()) return;
  while (!write_queue_.empty()) {
    // Jobs that fit one entry: each job's batch without its header, under one new header
    // (kv/batch.h: version u8, command_count u32 little-endian, then the commands).
    std::vector<std::shared_ptr<Job>> jobs;
    std::string entry(kBatchHeaderBytes, '\0');
    std::size_t commands = 0;
    while (!write_queue_.empty()) {
      Job& next = *write_queue_.front();
      if (next.done) {  // Timed out while queued.
        write_queue_.pop_front();
        continue;
      }
      URAFT_ASSERT(next.batch.size() >= kBatchHeaderBytes);
      const std::size_t part = next.batch.size() - kBatchHeaderBytes;
      if (!jobs.empty() && (entry.size() + part > kEntryBytesTarget ||
                            commands + next.commands > kBatchCommandsMax)) {
        break;
      }
      entry.append(next.batch, kBatchHeaderBytes);
      commands += next.commands;
      jobs.push_back(std::move(write_queue_.front()));
      write_queue_.pop_front();
    }
    if (jobs.empty()) return;
    entry[0] = static_cast<char>(kBatchVersion);
    for (std::size_t i = 0; i < 4; ++i) {
      entry[1 + i] = static_cast<char>((commands >> (8 * i)) & 0xff);
    }
    const StartResult started = node_.start(std::move(entry));
    if (!started.is_leader) {
      for (const std::shared_ptr<Job>& job : jobs) {
        ++counters_.tryagain;
        fail(*job, kErrNoLeader);
      }
      continue;
    }
    ++counters_.entries_proposed;
    counters_.write_commands += commands;
    // Proposals of an earlier leadership at or above this index were cut from the log (a
    // newer leader's entries replaced them) and this node leads again before the sweeper saw.
    if (!inflight_.empty() && inflight_.rbegin()->first >= started.index.value) {
      fail_cut_proposals();
    }
    URAFT_ASSERT(!inflight_.contains(started.index.value));
    inflight_.emplace(started.index.value, Proposal{started.term, std::move(jobs)});
  }
}

// --- applying -----------------------------------------------------------------------------

Task<void> Service::run_applier(Service* self, Scope* tasks) {
  for (;;) {
    std::optional<ApplyMsg> msg = co_await self->node_.apply_channel().receive();
    if (!msg) co_return;  // The node was killed.
    if (msg->kind == ApplyMsg::Kind::kSnapshot) {
      co_await self->apply_snapshot(std::move(*msg));
    } else {
      self->apply_entry(*msg);
      co_await self->maybe_snapshot(*tasks);
    }
    self->applied_moved_.set();
    self->applied_moved_.reset();
    co_await maybe_yield();
  }
}

void Service::apply_entry(const ApplyMsg& msg) {
  URAFT_ASSERT(msg.index > applied_);
  applied_ = msg.index;
  const std::uint64_t index = msg.index.value;
  // Entries below this one were settled as they were applied; none can be ours any more.
  fail_proposals_below(index);
  std::optional<BatchError> error;
  replies_.clear();
  if (!msg.data.empty()) {  // Empty: a new leader's no-op.
    error = apply_batch(store_, msg.data, replies_);
    if (error) {
      ++counters_.bad_entries;
      spdlog::error("log entry {} refused: {}", index, to_string(*error));
    } else {
      ++counters_.entries_applied;
    }
  }
  auto it = inflight_.find(index);
  if (it == inflight_.end()) return;
  Proposal proposal = std::move(it->second);
  inflight_.erase(it);
  if (inflight_.size() < kProposalsInflightMax) room_.set();
  // Same index and term: this is the entry we proposed (Log Matching). Another term: a new
  // leader overwrote ours, which was never applied anywhere.
  if (proposal.term != msg.term || error) {
    for (const std::shared_ptr<Job>& job : proposal.jobs) {
      ++counters_.tryagain;
      fail(*job, error ? std::string_view("ERR internal error: log entry refused")
                       : kErrNotApplied);
    }
    return;
  }
  std::size_t next = 0;
  for (const std::shared_ptr<Job>& job : proposal.jobs) {
    URAFT_ASSERT(next + job->commands <= replies_.size());
    if (!job->done) {
      job->replies.clear();
      const std::size_t begin = next == 0 ? 0 : replies_.ends[next - 1];
      const std::size_t end = replies_.ends[next + job->commands - 1];
      job->replies.bytes.assign(replies_.bytes, begin, end - begin);
      for (std::size_t i = 0; i < job->commands; ++i) {
        job->replies.ends.push_back(replies_.ends[next + i] - begin);
      }
      finish(*job);
    }
    next += job->commands;
  }
  URAFT_ASSERT(next == replies_.size());
}

Task<void> Service::apply_snapshot(ApplyMsg msg) {
  // Restored into a fresh store off the loop (it takes as long as serializing); the old one
  // keeps serving reads at the old applied index meanwhile.
  Store fresh;
  std::optional<SnapshotError> error;
  const SnapshotData& data = msg.snapshot;
  co_await run_on_helper_thread(
      [&fresh, &error, &data] { error = fresh.restore(data.size(), reader_of(data)); });
  if (std::optional<SnapshotError> e = error) {
    // Every replica got these bytes from a leader that made them: this one cannot follow.
    throw std::runtime_error("snapshot at index " + std::to_string(msg.index.value) +
                             " from the leader is corrupt (" + std::string(to_string(*e)) + ")");
  }
  store_ = std::move(fresh);
  applied_ = last_snapshot_ = msg.index;
  ++counters_.snapshots_restored;
  spdlog::info("installed snapshot at index {} from the leader ({} keys, {} bytes)",
               msg.index.value, store_.stats().keys, msg.snapshot.size());
  // Proposals it covers may or may not be in it.
  fail_proposals_below(msg.index.value + 1);
}

void Service::fail_proposals_below(std::uint64_t end) {
  while (!inflight_.empty() && inflight_.begin()->first < end) {
    for (const std::shared_ptr<Job>& job : inflight_.begin()->second.jobs) {
      fail(*job, kErrUnknownOutcome);
    }
    inflight_.erase(inflight_.begin());
  }
  room_.set();
}

Task<void> Service::maybe_snapshot(Scope& tasks) {
  if (snapshotting_ || node_.log_bytes() < options_.snapshot_log_bytes || applied_ <= last_snapshot_) {
    co_return;
  }
  // The node counts an entry as applied once its applier has resumed from handing it over;
  // until then it would refuse a snapshot that covers it. Try again after the next entry.
  if (applied_ > node_.last_applied()) co_return;
  Loop& loop = Loop::current();
  if (loop.now() < snapshot_retry_at_) co_return;
  const LogIndex index = applied_;
  std::unique_ptr<SnapshotSink> sink = node_.snapshot_sink(index);
  if (!sink) co_return;  // A newer snapshot came from the leader.
  const TimePoint started = loop.now();
  last_snapshot_ = index;
  snapshotting_ = true;
  if (options_.snapshot_in_child && loop.uring_backend() != nullptr) {
    // The child has the store as of `index`; the applier goes on at once.
    std::unique_ptr<ChildSnapshot> child;
    try {
      child = std::make_unique<ChildSnapshot>(store_);
    } catch (const std::system_error& e) {
      snapshot_failed(index, e.what());
      co_return;
    }
    counters_.snapshot_fork_usec =
        std::chrono::duration_cast<std::chrono::microseconds>(child->fork_time()).count();
    tasks.spawn(store_snapshot(this, index, std::move(sink), std::move(child), {}, started));
    co_return;
  }
  // On a helper thread: nothing may change the store meanwhile, so the applier waits.
  std::string bytes;
  const Store& store = store_;
  co_await run_on_helper_thread([&store, &bytes] { store.snapshot(bytes); });
  co_await store_snapshot(this, index, std::move(sink), nullptr, std::move(bytes), started);
}

Task<void> Service::store_snapshot(Service* self, LogIndex index, std::unique_ptr<SnapshotSink> sink,
                                   std::unique_ptr<ChildSnapshot> child, std::string bytes,
                                   TimePoint started) {
  Loop& loop = Loop::current();
  std::string problem;
  SnapshotData data;
  try {
    bool drained = true;
    if (child) {
      drained = co_await child->drain(*sink);
    } else {
      co_await sink->append(std::move(bytes));
    }
    if (!drained) problem = "its child process failed";
    if (problem.empty()) data = co_await sink->finish();
  } catch (const std::runtime_error& e) {
    problem = e.what();  // Storage could not take it (a full disk).
  }
  if (!problem.empty()) {
    self->snapshot_failed(index, problem);
    co_return;
  }
  self->snapshotting_ = false;
  const TimePoint written = loop.now();
  const std::uint64_t size = data.size();
  co_await self->node_.snapshot(index, std::move(data));
  ++self->counters_.snapshots_taken;
  const auto ms = [](Duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  spdlog::info("snapshot at index {} ({} bytes; written in {} ms{}, stored in {} ms); log now {} entries",
               index.value, size, ms(written - started),
               child ? fmt::format(" by a child, fork {} us", self->counters_.snapshot_fork_usec) : "",
               ms(loop.now() - written), self->node_.log_entries());
}

void Service::snapshot_failed(LogIndex index, std::string_view why) {
  spdlog::warn("the snapshot at index {} failed ({}); trying again in {} s", index.value, why,
               kSnapshotRetry.count());
  snapshotting_ = false;
  snapshot_retry_at_ = Loop::current().now() + kSnapshotRetry;
  ++counters_.snapshot_failures;
}

// --- role changes and timeouts ------------------------------------------------------------

Task<void> Service::run_watcher(Service* self) {
  NodeStatus last;
  last.term = self->node_.current_term();
  for (std::uint64_t seen = 0;;) {
    co_await self->node_.wait_change(seen);
    if (self->node_.killed()) co_return;
    const NodeStatus now = self->node_.status();
    seen = now.changes;
    if (now.term != last.term) {
      spdlog::info("term {} (was {})", now.term.value, last.term.value);
    }
    if (now.role != last.role) {
      spdlog::info("role {} -> {} in term {}", to_string(last.role), to_string(now.role),
                   now.term.value);
    }
    if (now.leader_id != last.leader_id && now.leader_id != kNoNode && now.role != Role::kLeader) {
      const std::string address = self->client_address(now.leader_id);
      spdlog::info("leader is node {}{}{} in term {}", now.leader_id.value,
                   address.empty() ? "" : " at ", address, now.term.value);
    }
    if (last.role == Role::kLeader && now.role != Role::kLeader && now.term == last.term) {
      // Stepped down in its own term (check-quorum: cut off from a majority). What it
      // proposed may commit under a later leader, or never: its clients hear so now rather
      // than at their deadline.
      self->fail_proposals_below(std::numeric_limits<std::uint64_t>::max());
    }
    if (now.role == Role::kLeader) self->proposer_wake_.set();  // A transfer may have ended.
    if (now.role != Role::kLeader && !self->write_queue_.empty()) {
      // Jobs not yet proposed are certainly not in the log: the next leader may take them.
      for (std::shared_ptr<Job>& job : self->write_queue_) self->reroute_.push_back(std::move(job));
      self->write_queue_.clear();
      self->reroute_wake_.set();
    }
    last = now;
  }
}

Task<void> Service::run_sweeper(Service* self) {
  for (;;) {
    const TimePoint due = Loop::current().now() + kSweepInterval;
    co_await sleep_until(due);
    const TimePoint now = Loop::current().now();
    // A late wake-up means the loop was blocked (or starved of CPU): long enough, and
    // followers stop hearing heartbeats. Worth an operator's attention.
    if (now - due > kLoopStallWarning) {
      spdlog::warn("the event loop was blocked or starved for {} ms",
                   std::chrono::duration_cast<std::chrono::milliseconds>(now - due).count());
    }
    // A follower's log may have been cut under proposals it made as leader: their clients
    // hear now rather than at their deadline. (A leader never cuts its own log.)
    if (self->node_.role() != Role::kLeader) self->fail_cut_proposals();
    bool failed = false;
    while (!self->waiting_.empty()) {
      std::shared_ptr<Job> job = self->waiting_.front().lock();
      if (job && !job->done) {
        if (job->deadline > now) break;
        ++self->counters_.timeouts;
        self->fail(*job, kErrTimeout);
        failed = true;
      }
      self->waiting_.pop_front();
    }
    if (failed) {  // Waiters in wait_applied re-check their job.
      self->applied_moved_.set();
      self->applied_moved_.reset();
      self->room_.set();
    }
  }
}

Task<void> Service::run_rerouter(Service* self, Scope* tasks) {
  for (;;) {
    while (self->reroute_.empty()) {
      self->reroute_wake_.reset();
      co_await self->reroute_wake_.wait();
    }
    std::shared_ptr<Job> job = std::move(self->reroute_.front());
    self->reroute_.pop_front();
    tasks->spawn(reroute(self, std::move(job)));
  }
}

namespace {

Task<bool> changed(Node& node, std::uint64_t seen) {
  co_await node.wait_change(seen);
  co_return true;
}

Task<bool> expires(TimePoint deadline) {
  co_await sleep_until(deadline);
  co_return false;
}

}  // namespace

Task<void> Service::reroute(Service* self, std::shared_ptr<Job> job) {
  Node& node = self->node_;
  const TimePoint deadline = Loop::current().now() + kRerouteWait;
  // Until a leader is known (a transfer's target wins in a round trip or two), or it leads
  // again itself; forward() then takes it there, or fails it.
  while (!job->done && !self->stopping_ && node.role() != Role::kLeader &&
         (node.leader_id() == kNoNode || node.leader_id() == node.id()) &&
         Loop::current().now() < deadline) {
    std::vector<Task<bool>> race;
    race.push_back(changed(node, node.change_count()));
    race.push_back(expires(deadline));
    (void)co_await when_any(std::move(race));
  }
  if (job->done) co_return;
  if (self->stopping_) {
    self->fail(*job, kErrStopping);
    co_return;
  }
  co_await self->forward(job);
}

void Service::fail_cut_proposals() {
  const RaftLog& log = node_.log();
  bool failed = false;
  for (auto it = inflight_.upper_bound(log.snapshot_index().value); it != inflight_.end();) {
    if (log.term_at(LogIndex{it->first}) == it->second.term) {
      ++it;
      continue;
    }
    // Gone from this log, but perhaps not from every log: a later leader holding it may yet
    // commit it (Figure 8), so the outcome is unknown.
    for (const std::shared_ptr<Job>& job : it->second.jobs) {
      ++counters_.tryagain;
      fail(*job, kErrUnknownOutcome);
    }
    it = inflight_.erase(it);
    failed = true;
  }
  if (failed && inflight_.size() < kProposalsInflightMax) room_.set();
}

void Service::fail(Job& job, std::string_view error) {
  if (job.done) return;
  job.replies.clear();
  for (std::size_t i = 0; i < job.commands; ++i) {
    append_error(job.replies.bytes, error);
    job.replies.ends.push_back(job.replies.bytes.size());
  }
  finish(job);
}

void Service::fail_all(std::string_view error) {
  for (const std::shared_ptr<Job>& job : write_queue_) fail(*job, error);
  write_queue_.clear();
  for (const std::shared_ptr<Job>& job : reroute_) fail(*job, error);
  reroute_.clear();
  for (auto& [index, proposal] : inflight_) {
    for (const std::shared_ptr<Job>& job : proposal.jobs) fail(*job, error);
  }
  inflight_.clear();
  for (const std::weak_ptr<Job>& weak : waiting_) {
    if (std::shared_ptr<Job> job = weak.lock()) fail(*job, error);
  }
  waiting_.clear();
  applied_moved_.set();
  applied_moved_.reset();
  room_.set();
}

void Service::finish(Job& job) {
  URAFT_ASSERT(!job.done);
  job.done = true;
  job.finished.set();
}

}  // namespace uraft::kv
