// Replies that claim durability (a vote, an AppendEntries success, an InstallSnapshot ack)
// leave only once the node's durable state covers them, however many handlers ask for the
// same write: each case sends the same request twice while storage holds every write back,
// and checks that neither reply leaves before the write that the first one started lands.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "core/event.h"
#include "core/loop.h"
#include "core/scope.h"
#include "net/rpc.h"
#include "raft/durable_writer.h"
#include "raft/mem_storage.h"
#include "raft/node.h"

namespace uraft {
namespace {

using namespace std::chrono_literals;

// Storage whose writes wait, in order, until the test opens its gate; only then do they
// reach `durable` (what a crash would leave). Reads of `durable` show what survives.
class GatedStorage final : public Storage {
 public:
  Task<RecoveredState> load() override { return durable.load(); }
  Task<void> save_hard_state(HardState state) override {
    co_await pass();
    co_await durable.save_hard_state(state);
  }
  Task<void> append(LogIndex first, std::vector<LogEntry> entries) override {
    co_await pass();
    co_await durable.append(first, std::move(entries));
  }
  Task<void> save_snapshot(SnapshotRecord snapshot, SnapshotLogAction action) override {
    co_await pass();
    co_await durable.save_snapshot(std::move(snapshot), action);
  }
  // Its appends wait for the gate too.
  std::unique_ptr<SnapshotSink> snapshot_sink(LogIndex, Term) override {
    return std::make_unique<GatedSink>(*this);
  }
  void open() noexcept { gate_.set(); }
  void close() noexcept { gate_.reset(); }

  MemStorage durable;

 private:
  class GatedSink final : public SnapshotSink {
   public:
    explicit GatedSink(GatedStorage& storage) : storage_(storage) {}
    std::uint64_t size() const noexcept override { return inner_.size(); }
    std::uint32_t crc() const noexcept override { return inner_.crc(); }
    Task<void> append(std::string bytes) override {
      co_await storage_.pass();
      co_await inner_.append(std::move(bytes));
    }
    Task<SnapshotData> finish() override { return inner_.finish(); }

   private:
    GatedStorage& storage_;
    MemorySnapshotSink inner_;
  };

  Task<void> pass() { co_await gate_.wait(); }  // Waiters wake in the order they came.
  Event gate_;
};

class SilentEndpoint final : public RpcEndpoint {
 public:
  NodeId self() const noexcept override { return NodeId{0}; }
  Task<RpcResult> call(NodeId, Message, Duration timeout) override {
    co_await sleep_for(timeout);
    co_return RpcResult::failure(RpcError::kTimeout);
  }
  void serve(RpcHandler*) override {}
};

// One request handled as its own task; the reply is kept when it leaves.
Task<void> ask(Node* node, NodeId from, Message request, std::optional<Message>* reply) {
  *reply = co_await node->handle(from, std::move(request));
}

// Sends `request` twice, lets 1 s pass with storage closed, then opens it. Returns both
// replies, and checks none left while closed.
Task<std::vector<Message>> twice_while_closed(Node* node, GatedStorage* storage,
                                              Message request) {
  Scope scope;
  std::optional<Message> first;
  std::optional<Message> second;
  storage->close();
  scope.spawn(ask(node, NodeId{1}, request, &first));
  co_await sleep_for(10ms);  // The first request's write is queued before the second arrives.
  scope.spawn(ask(node, NodeId{1}, request, &second));
  co_await sleep_for(1s);
  CHECK_FALSE(first.has_value());
  CHECK_FALSE(second.has_value());  // The bug: the repeat saw nothing to write, replied.
  storage->open();
  co_await scope.join();
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  co_return std::vector<Message>{std::move(*first), std::move(*second)};
}

Config quiet_config() {
  Config c = Config::lab();
  // The node under test never stands for election while the test drives it.
  c.election_timeout_min = 100s;
  c.election_timeout_max = 200s;
  return c;
}

using NodeBody = Task<void> (*)(Node*, GatedStorage*);

Task<void> drive_node(GatedStorage* storage, NodeBody body) {
  SilentEndpoint rpc;
  Scope scope;
  storage->open();
  Node node(NodeId{0}, 3, rpc, *storage, quiet_config(), RecoveredState{});
  scope.spawn(node.run());
  co_await body(&node, storage);
  node.kill();
  co_await scope.join();
}

// Runs `body` on node 0 of 3, fresh, on a simulated loop over an open GatedStorage.
void run_on_node(NodeBody body) {
  auto loop = Loop::simulated({.seed = 7});
  GatedStorage storage;
  loop->run(drive_node(&storage, body));
}

// Node 0 takes term 2 from leader 1, durably: later writes are held back alone.
Task<void> enter_term_2(Node* node) {
  const AppendEntriesArgs heartbeat{Term{2}, NodeId{1}, LogIndex{0}, Term{0}, {}, LogIndex{0}};
  (void)co_await node->handle(NodeId{1}, heartbeat);
}

Task<void> repeated_vote(Node* node, GatedStorage* storage) {
  const RequestVoteArgs vote{Term{3}, NodeId{1}, LogIndex{0}, Term{0}};
  const std::vector<Message> replies = co_await twice_while_closed(node, storage, vote);
  for (const Message& m : replies) CHECK(std::get<RequestVoteReply>(m).vote_granted);
  CHECK(storage->durable.hard_state() == HardState{Term{3}, NodeId{1}});
}

TEST_CASE("a repeated RequestVote is not granted before the vote is durable") {
  run_on_node(repeated_vote);
}

Task<void> repeated_term_bump(Node* node, GatedStorage* storage) {
  const AppendEntriesArgs heartbeat{Term{4}, NodeId{1}, LogIndex{0}, Term{0}, {}, LogIndex{0}};
  const std::vector<Message> replies = co_await twice_while_closed(node, storage, heartbeat);
  for (const Message& m : replies) {
    CHECK(std::get<AppendEntriesReply>(m).success);
    CHECK(std::get<AppendEntriesReply>(m).term == Term{4});
  }
  CHECK(storage->durable.hard_state().current_term == Term{4});
}

TEST_CASE("a repeated AppendEntries of a newer term is not answered before the term is durable") {
  run_on_node(repeated_term_bump);
}

Task<void> repeated_entries(Node* node, GatedStorage* storage) {
  co_await enter_term_2(node);
  AppendEntriesArgs append{Term{2}, NodeId{1}, LogIndex{0}, Term{0}, {}, LogIndex{0}};
  append.entries = {LogEntry{Term{2}, "a"}, LogEntry{Term{2}, "b"}};
  const std::vector<Message> replies = co_await twice_while_closed(node, storage, append);
  for (const Message& m : replies) {
    CHECK(std::get<AppendEntriesReply>(m).success);
    CHECK(std::get<AppendEntriesReply>(m).match_index == LogIndex{2});
  }
  CHECK(storage->durable.last_index() == LogIndex{2});
}

TEST_CASE("a repeated AppendEntries does not acknowledge entries before they are durable") {
  run_on_node(repeated_entries);
}

Task<void> repeated_snapshot(Node* node, GatedStorage* storage) {
  // The term is durable first: only the snapshot's own save is held back below.
  co_await enter_term_2(node);
  const InstallSnapshotArgs install{Term{2},  NodeId{1}, LogIndex{50}, Term{1}, 0, "state", true,
                                    SnapshotData("state").crc()};
  const std::vector<Message> replies = co_await twice_while_closed(node, storage, install);
  for (const Message& m : replies) CHECK(std::get<InstallSnapshotReply>(m).term == Term{2});
  REQUIRE(storage->durable.snapshot().has_value());
  CHECK(storage->durable.snapshot()->last_included_index == LogIndex{50});
}

TEST_CASE("a repeated InstallSnapshot is not acknowledged before the first install is durable") {
  run_on_node(repeated_snapshot);
}

// What a DurableWriter reads (a node's term, vote and log), and the writer, from term 1.
struct WriterUnderTest {
  explicit WriterUnderTest(Storage& storage) : writer(storage, term, vote, log) {
    writer.recovered(HardState{term, vote});
  }
  Term term{1};
  NodeId vote = kNoNode;
  RaftLog log;
  DurableWriter writer;
};

using WriterBody = Task<void> (*)(WriterUnderTest*, GatedStorage*);

Task<void> drive_writer(GatedStorage* storage, WriterBody body) {
  WriterUnderTest w(*storage);
  Scope scope;
  scope.spawn(w.writer.run());
  co_await body(&w, storage);
  w.writer.stop();
  scope.cancel();
  co_await scope.join();
}

// Runs `body` on a fresh writer on a simulated loop over a GatedStorage (closed).
void run_on_writer(WriterBody body) {
  auto loop = Loop::simulated({.seed = 7});
  GatedStorage storage;
  loop->run(drive_writer(&storage, body));
}

Task<void> cut_during_write(WriterUnderTest* w, GatedStorage* storage) {
  storage->durable.set_write_delay(10ms);
  storage->close();
  w->log.append(std::vector<LogEntry>{{Term{1}, "a"}, {Term{1}, "b"}, {Term{1}, "c"}});
  w->writer.wake();
  co_await sleep_for(1ms);  // The write of 1..3 is issued, held at the gate.
  // A newer leader's entry replaces 2..3 while that write is in flight.
  w->term = Term{2};
  w->log.truncate_suffix(LogIndex{2});
  w->writer.log_cut(LogIndex{2});
  w->log.append(LogEntry{Term{2}, "B"});
  w->writer.wake();
  CHECK(w->writer.log_durable() == LogIndex{0});
  storage->open();
  co_await w->writer.next_write();  // 1..3 at term 1: only 1 is still the node's w->log.
  CHECK(w->writer.log_durable() == LogIndex{1});
  CHECK(w->writer.hard_durable() == HardState{Term{1}, kNoNode});
  co_await w->writer.log_durable_to(LogIndex{2});
  // The hard state went first: the entry of term 2 is durable after its term.
  CHECK(w->writer.hard_durable() == HardState{Term{2}, kNoNode});
  CHECK(w->writer.log_writes() == 2);
  CHECK(storage->durable.last_index() == LogIndex{2});
}

// A snapshot queued while storage still holds a cut-off leader's entries below its index
// (the rewrite not yet written) must not keep them: storage's suffix is not ours.
Task<void> snapshot_over_unwritten_cut(WriterUnderTest* w, GatedStorage* storage) {
  storage->open();
  w->log.append(std::vector<LogEntry>{{Term{1}, "a"}, {Term{1}, "b"}, {Term{1}, "c"}, {Term{1}, "d"}});
  w->writer.wake();
  co_await w->writer.log_durable_to(LogIndex{4});
  storage->close();
  // A leader of term 2 replaces 2..4 with 2..3 of its own and commits them; the writer is
  // held at the gate with the new term, before it has rewritten the w->log.
  w->term = Term{2};
  w->writer.wake();
  co_await sleep_for(1ms);
  w->log.truncate_suffix(LogIndex{2});
  w->writer.log_cut(LogIndex{2});
  w->log.append(std::vector<LogEntry>{{Term{2}, "B"}, {Term{2}, "C"}});
  // The service snapshots at 3: the log keeps nothing after it.
  w->log.compact_prefix(LogIndex{3});
  w->writer.queue_snapshot(SnapshotRecord{LogIndex{3}, Term{2}, "state@3"},
                        SnapshotLogAction::kKeepSuffix);
  storage->open();
  co_await w->writer.snapshot_durable_to(LogIndex{3});
  co_await w->writer.log_durable_to(LogIndex{3});
  const RecoveredState after = co_await storage->durable.load();
  REQUIRE(after.snapshot.has_value());
  CHECK(after.snapshot->last_included_index == LogIndex{3});
  CHECK(after.entries.empty());  // Not term 1's entry 4.
}

TEST_CASE("a snapshot saved before a cut is rewritten drops storage's stale suffix") {
  run_on_writer(snapshot_over_unwritten_cut);
}

Task<InstallSnapshotReply> snapshot_reply(Node* node, InstallSnapshotArgs args) {
  co_return std::get<InstallSnapshotReply>(co_await node->handle(args.leader_id, args));
}

// Chunks of a snapshot arrive with a late duplicate of an older one's first chunk between
// them: the assembly goes on, and the follower names offsets only within one snapshot.
Task<void> chunks_with_late_duplicate(Node* node, GatedStorage* storage) {
  const NodeId leader{1};
  const InstallSnapshotArgs first{Term{2}, leader, LogIndex{50}, Term{2}, 0, "new-", false};
  const InstallSnapshotArgs stale{Term{2}, leader, LogIndex{40}, Term{2}, 0, "old-", false};
  const std::uint32_t crc = SnapshotData("new-state").crc();
  const InstallSnapshotArgs last{Term{2}, leader, LogIndex{50}, Term{2}, 4, "state", true, crc};
  const InstallSnapshotArgs stale_next{Term{2}, leader, LogIndex{40}, Term{2}, 4, "x", true, crc};
  CHECK((co_await snapshot_reply(node, first)).next_offset == 4);
  const InstallSnapshotReply late = co_await snapshot_reply(node, stale);
  CHECK_FALSE(late.installed);
  CHECK(late.next_offset == 0);  // Of the older snapshot, nothing is held.
  CHECK((co_await snapshot_reply(node, stale_next)).next_offset == 0);
  const InstallSnapshotReply done = co_await snapshot_reply(node, last);
  CHECK(done.installed);
  REQUIRE(storage->durable.snapshot().has_value());
  CHECK(storage->durable.snapshot()->data == "new-state");
}

TEST_CASE("a late first chunk of an older snapshot does not derail the one being assembled") {
  run_on_node(chunks_with_late_duplicate);
}

// The last chunk's checksum does not match the bytes assembled (a chunk corrupted or from
// elsewhere): nothing is installed, the follower asks for the snapshot from its start, and the
// same snapshot sent again whole is installed.
Task<void> chunks_with_bad_checksum(Node* node, GatedStorage* storage) {
  const NodeId leader{1};
  const std::uint32_t crc = SnapshotData("new-state").crc();
  const InstallSnapshotArgs first{Term{2}, leader, LogIndex{50}, Term{2}, 0, "new-", false};
  const InstallSnapshotArgs wrong{Term{2}, leader, LogIndex{50}, Term{2}, 4, "STATE", true, crc};
  const InstallSnapshotArgs right{Term{2}, leader, LogIndex{50}, Term{2}, 4, "state", true, crc};
  CHECK((co_await snapshot_reply(node, first)).next_offset == 4);
  const InstallSnapshotReply refused = co_await snapshot_reply(node, wrong);
  CHECK_FALSE(refused.installed);
  CHECK_FALSE(storage->durable.snapshot().has_value());
  // What it held is gone: the last chunk alone does not follow anything now.
  CHECK((co_await snapshot_reply(node, right)).next_offset == 0);
  CHECK((co_await snapshot_reply(node, first)).next_offset == 4);
  CHECK((co_await snapshot_reply(node, right)).installed);
  REQUIRE(storage->durable.snapshot().has_value());
  CHECK(storage->durable.snapshot()->data == "new-state");
}

// The leader, having heard nothing of a chunk still being written (a slow disk), sends the
// next one: it is refused at once, so the sink sees one append at a time and the last
// chunk's checks never run ahead of the bytes before it.
Task<void> chunk_while_writing(Node* node, GatedStorage* storage) {
  co_await enter_term_2(node);
  const NodeId leader{1};
  const std::uint32_t crc = SnapshotData("new-state").crc();
  const InstallSnapshotArgs first{Term{2}, leader, LogIndex{50}, Term{2}, 0, "new-", false};
  const InstallSnapshotArgs last{Term{2}, leader, LogIndex{50}, Term{2}, 4, "state", true, crc};
  Scope scope;
  std::optional<Message> first_reply;
  std::optional<Message> last_reply;
  storage->close();
  scope.spawn(ask(node, leader, first, &first_reply));
  co_await sleep_for(10ms);
  scope.spawn(ask(node, leader, last, &last_reply));
  co_await sleep_for(10ms);
  CHECK_FALSE(first_reply.has_value());  // Its bytes wait for the disk.
  REQUIRE(last_reply.has_value());       // Refused without waiting.
  CHECK_FALSE(std::get<InstallSnapshotReply>(*last_reply).installed);
  CHECK(std::get<InstallSnapshotReply>(*last_reply).next_offset == 4);
  storage->open();
  co_await scope.join();
  REQUIRE(first_reply.has_value());
  CHECK(std::get<InstallSnapshotReply>(*first_reply).next_offset == 4);
  CHECK((co_await snapshot_reply(node, last)).installed);
  REQUIRE(storage->durable.snapshot().has_value());
  CHECK(storage->durable.snapshot()->data == "new-state");
}

TEST_CASE("a chunk that arrives while the one before it is being written is refused") {
  run_on_node(chunk_while_writing);
}

TEST_CASE("a snapshot whose bytes do not match the leader's checksum is not installed") {
  run_on_node(chunks_with_bad_checksum);
}

TEST_CASE("a write issued before a log cut does not make the cut-off part durable") {
  run_on_writer(cut_during_write);
}

}  // namespace
}  // namespace uraft
