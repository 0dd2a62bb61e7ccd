// The service: its wire format for a forwarded job's replies (what a leader sends back to a
// follower round-trips; anything malformed from a peer is refused, not trusted), and its
// proposals when the log is cut under them.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/loop.h"
#include "core/scope.h"
#include "kv/batch.h"
#include "kv/resp.h"
#include "kv/service.h"
#include "raft/mem_storage.h"

namespace uraft::kv {
namespace {

BatchReplies sample() {
  BatchReplies r;
  for (std::string_view reply : {std::string_view("+OK\r\n"), std::string_view("$-1\r\n"),
                                 std::string_view(":42\r\n"), std::string_view("")}) {
    r.bytes += reply;
    r.ends.push_back(r.bytes.size());
  }
  return r;
}

TEST_CASE("encode_replies round-trips through decode_replies") {
  // Goal: every reply comes back whole and in order, empty ones included.
  const BatchReplies in = sample();
  BatchReplies out;
  REQUIRE(decode_replies(encode_replies(in), out));
  REQUIRE(out.size() == in.size());
  for (std::size_t i = 0; i < in.size(); ++i) CHECK(out.reply(i) == in.reply(i));
  BatchReplies none;
  REQUIRE(decode_replies(encode_replies(BatchReplies{}), none));
  CHECK(none.size() == 0);
}

TEST_CASE("decode_replies refuses every truncation and bad lengths") {
  // Goal: a peer's malformed answer is refused (the follower replies an error), never read
  // out of bounds: truncated payloads, lengths past the end, trailing bytes, huge counts.
  const std::string good = encode_replies(sample());
  BatchReplies out;
  for (std::size_t n = 0; n < good.size(); ++n) {
    CHECK_FALSE(decode_replies(std::string_view(good).substr(0, n), out));
  }
  CHECK_FALSE(decode_replies(good + "x", out));
  std::string long_length = good;
  long_length[4] = static_cast<char>(0xff);  // The first reply claims 255+ bytes.
  CHECK_FALSE(decode_replies(long_length, out));
  const std::string huge_count("\xff\xff\xff\xff", 4);
  CHECK_FALSE(decode_replies(huge_count, out));
}

// Node 0's two peers as the test scripts them: they grant every vote while `grant` is set and
// never answer AppendEntries, so nothing a leader proposes commits.
class ScriptedPeers final : public RpcEndpoint {
 public:
  NodeId self() const noexcept override { return NodeId{0}; }
  Task<RpcResult> call(NodeId, Message request, Duration timeout) override {
    if (const auto* vote = std::get_if<RequestVoteArgs>(&request); vote != nullptr && grant) {
      // Peers in the asker's term: a pre-vote is for the term after it.
      const Term term = vote->pre_vote ? Term{vote->term.value - 1} : vote->term;
      co_return RpcResult::success(RequestVoteReply{term, true});
    }
    co_await sleep_for(timeout);
    co_return RpcResult::failure(RpcError::kTimeout);
  }
  void serve(RpcHandler*) override {}

  bool grant = true;
};

Config fast_config() {
  Config c = Config::lab();
  c.heartbeat_interval = std::chrono::milliseconds(5);
  c.election_timeout_min = std::chrono::milliseconds(20);
  c.election_timeout_max = std::chrono::milliseconds(30);
  c.rpc_timeout = std::chrono::milliseconds(50);
  c.check_quorum = false;  // The scripted peers never answer AppendEntries: a leader stays one.
  return c;
}

Task<void> until(Node& node, Role role) {
  while (node.role() != role) co_await node.wait_change(node.change_count());
}

std::shared_ptr<Job> set_job(std::string_view value) {
  auto job = std::make_shared<Job>();
  job->access = Access::kWrite;
  const std::vector<std::vector<std::string_view>> commands{{"SET", "k", value}};
  job->batch = encode_batch(commands);
  job->commands = 1;
  return job;
}

// A leader proposes three entries that never commit; a newer leader's entry replaces them;
// `lead_again`: the node is elected again at once and proposes at an index still held by
// one of the cut proposals. Either way those clients hear "may or may not" long before
// their deadline, and the service goes on.
Task<void> cut_under_proposals(bool lead_again) {
  ScriptedPeers peers;
  MemStorage storage;
  Node node(NodeId{0}, 3, peers, storage, fast_config(), RecoveredState{});
  Service service(node, peers, ServiceOptions{.snapshot_log_bytes = std::size_t{1} << 30},
                  std::nullopt);
  Scope scope;
  scope.spawn(node.run());
  scope.spawn(service.run());
  co_await until(node, Role::kLeader);
  const Term first_term = node.current_term();
  std::vector<std::shared_ptr<Job>> cut;
  for (const char* value : {"1", "2", "3"}) {
    cut.push_back(set_job(value));
    scope.spawn(service.execute(cut.back()));
    // One entry each: the proposer takes what arrived in one loop turn.
    while (service.proposals_inflight() < cut.size()) co_await sleep_for(1ms);
  }
  REQUIRE(node.log().last_index() == LogIndex{3});
  peers.grant = lead_again;
  // The leader of the next term has another entry at index 1: ours go from 1 on.
  const Term next{first_term.value + 1};
  AppendEntriesArgs replace{next, NodeId{1}, LogIndex{0}, Term{0}, {}, LogIndex{0}};
  replace.entries.push_back(LogEntry{next, std::string()});
  const Message reply = co_await node.handle(NodeId{1}, replace);
  REQUIRE(std::get<AppendEntriesReply>(reply).success);
  REQUIRE(node.log().last_index() == LogIndex{1});
  std::shared_ptr<Job> later;
  if (lead_again) {
    co_await until(node, Role::kLeader);
    later = set_job("4");
    scope.spawn(service.execute(later));
  }
  co_await sleep_for(200ms);  // Two sweeps; the jobs' deadline is kJobTimeout away.
  for (const std::shared_ptr<Job>& job : cut) {
    REQUIRE(job->done);
    CHECK(job->replies.reply(0).find("may or may not have been applied") != std::string::npos);
  }
  if (later) {
    CHECK_FALSE(later->done);  // Proposed at index 2 (nothing commits).
    CHECK(service.proposals_inflight() == 1);
  } else {
    CHECK(service.proposals_inflight() == 0);
  }
  node.kill();
  co_await scope.join();
}

TEST_CASE("proposals cut from a follower's log fail with an unknown outcome, not at their deadline") {
  auto loop = Loop::simulated({.seed = 3});
  loop->run(cut_under_proposals(false));
}

TEST_CASE("a leader elected again proposes over an index its cut proposals still held") {
  auto loop = Loop::simulated({.seed = 3});
  loop->run(cut_under_proposals(true));
}

// Check-quorum: a leader whose followers never answer steps down in its own term; the
// clients of what it proposed hear "may or may not" then, not at their 5 s deadline.
Task<void> deposed_leader_fails_its_proposals() {
  ScriptedPeers peers;
  MemStorage storage;
  Config config = fast_config();
  config.check_quorum = true;
  Node node(NodeId{0}, 3, peers, storage, config, RecoveredState{});
  Service service(node, peers, ServiceOptions{.snapshot_log_bytes = std::size_t{1} << 30},
                  std::nullopt);
  Scope scope;
  scope.spawn(node.run());
  scope.spawn(service.run());
  co_await until(node, Role::kLeader);
  peers.grant = false;  // It is not elected again.
  const Term term = node.current_term();
  const TimePoint proposed = Loop::current().now();
  std::shared_ptr<Job> job = set_job("1");
  scope.spawn(service.execute(job));
  co_await until(node, Role::kFollower);
  CHECK(node.current_term() == term);
  co_await sleep_for(1ms);  // The service's watcher runs.
  REQUIRE(job->done);
  CHECK(job->replies.reply(0).find("may or may not have been applied") != std::string::npos);
  CHECK(Loop::current().now() - proposed < 100ms);
  node.kill();
  co_await scope.join();
}

TEST_CASE("a leader that steps down for want of a quorum fails its proposals at once") {
  auto loop = Loop::simulated({.seed = 5});
  loop->run(deposed_leader_fails_its_proposals());
}

}  // namespace
}  // namespace uraft::kv
