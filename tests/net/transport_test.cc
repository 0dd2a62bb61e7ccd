// Tests for the real transports (net/tcp_transport.h, net/udp_transport.h) and TransportRpc
// (net/rpc_endpoint.h): one conformance suite run over TCP and over UDP on 127.0.0.1 with
// kernel-chosen ports, plus what only one of them has (TCP's handshake and reconnects, UDP's
// datagram bound). Waits are for events or conditions; time limits are safety nets only.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/event.h"
#include "core/io.h"
#include "core/loop.h"
#include "core/scope.h"
#include "core/semaphore.h"
#include "core/when.h"
#include "net/frame.h"
#include "net/rpc_endpoint.h"
#include "net/tcp_transport.h"
#include "net/transport.h"
#include "net/udp_transport.h"
#include "tests/net/random_message.h"

namespace uraft {
namespace {

constexpr std::uint64_t kCluster = 0xC1u;
constexpr std::uint64_t kOtherCluster = 0xC2u;
// Timeouts of calls that must succeed: never reached on a healthy machine; a safety net.
constexpr Duration kSafeTimeout = std::chrono::seconds(10);
// How long a test waits for a condition before it gives up and fails.
constexpr Duration kConditionLimit = std::chrono::seconds(20);

// The transports under test; the single-shot kinds force the receive path that kernels
// without multishot receive (before 6.0) fall back to.
enum class Kind { kTcp, kUdp, kTcpSingleShot, kUdpSingleShot };
bool tcp(Kind k) { return k == Kind::kTcp || k == Kind::kTcpSingleShot; }
bool multishot(Kind k) { return k == Kind::kTcp || k == Kind::kUdp; }
struct TcpKind {
  static constexpr Kind kind = Kind::kTcp;
};
struct UdpKind {
  static constexpr Kind kind = Kind::kUdp;
};
struct TcpSingleShotKind {
  static constexpr Kind kind = Kind::kTcpSingleShot;
};
struct UdpSingleShotKind {
  static constexpr Kind kind = Kind::kUdpSingleShot;
};
#define URAFT_ALL_KINDS TcpKind, UdpKind, TcpSingleShotKind, UdpSingleShotKind

// Node ids by number: a call, not a braced initializer, so it may appear inside co_await
// expressions (g++ 12 mishandles braced temporaries there).
NodeId node(unsigned n) { return NodeId{n}; }

using Direction = std::pair<unsigned, unsigned>;  // (from, to)

// A ClientRequest as a Message, built by a call for the same reason.
Message ask(std::string payload) { return ClientRequest{std::move(payload)}; }

// Log lines the transports wrote (instead of stderr).
struct Logs {
  std::vector<std::string> lines;
  bool contains(std::string_view text) const {
    for (const auto& line : lines) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }
};

TransportOptions options_for(NodeId self, Logs* logs, std::uint64_t cluster = kCluster) {
  TransportOptions options;
  options.self = self;
  options.cluster_id = cluster;
  options.log = [logs](std::string_view line) { logs->lines.emplace_back(line); };
  return options;
}

std::unique_ptr<Transport> open_transport(Kind kind, TransportOptions options) {
  std::error_code error;
  std::unique_ptr<Transport> t;
  options.multishot_receive = multishot(kind);
  if (tcp(kind)) {
    t = TcpTransport::open(std::move(options), error);
  } else {
    t = UdpTransport::open(std::move(options), error);
  }
  REQUIRE_MESSAGE(t != nullptr, "opening a transport failed: ", error.message());
  return t;
}

// The reply a test server gives: a function of the request, so callers can check it.
Message reply_for(NodeId from, const Message& request) {
  if (const auto* m = std::get_if<RequestVoteArgs>(&request)) {
    return RequestVoteReply{m->term, m->candidate_id.value % 2 == 0};
  }
  if (const auto* m = std::get_if<AppendEntriesArgs>(&request)) {
    return AppendEntriesReply{m->term,          !m->entries.empty(), m->prev_log_term,
                              m->prev_log_index, LogIndex{m->entries.size()}, m->leader_commit};
  }
  if (const auto* m = std::get_if<InstallSnapshotArgs>(&request)) {
    return InstallSnapshotReply{m->term};
  }
  if (const auto* m = std::get_if<ClientRequest>(&request)) {
    return ClientReply{ClientReply::Status::kOk, from, m->payload};
  }
  FAIL("a reply type arrived as a request");
  return {};
}

class EchoHandler final : public RpcHandler {
 public:
  Task<Message> handle(NodeId from, Message request) override {
    ++served;
    co_return reply_for(from, request);
  }
  std::uint64_t served = 0;
};

// Replies only once `release` is set: for late replies and cancellation.
class GatedHandler final : public RpcHandler {
 public:
  Task<Message> handle(NodeId from, Message request) override {
    ++started;
    entered.set();
    try {
      co_await release.wait();
    } catch (const Cancelled&) {
      ++cancelled;
      throw;
    }
    co_return reply_for(from, request);
  }
  Event entered;
  Event release;
  int started = 0;
  int cancelled = 0;
};

struct Node {
  std::unique_ptr<Transport> transport;
  std::unique_ptr<TransportRpc> rpc;
};

// A few nodes on 127.0.0.1 that know each other's kernel-chosen addresses.
struct Cluster {
  Kind kind;
  Logs logs;
  EchoHandler echo;
  std::map<NodeId, Node> nodes;

  // Opens node `id` (on `address` if given, to restart it where it was), with an endpoint
  // serving `echo` unless `with_rpc` is false, and introduces it to the others.
  Transport& open(NodeId id, TransportOptions options, bool with_rpc = true) {
    Node& node = nodes[id];
    REQUIRE(node.transport == nullptr);
    node.transport = open_transport(kind, std::move(options));
    if (with_rpc) {
      node.rpc = std::make_unique<TransportRpc>(*node.transport);
      node.rpc->serve(&echo);
    }
    for (auto& [other_id, other] : nodes) {
      if (other_id == id || other.transport == nullptr) continue;
      other.transport->set_peer(id, node.transport->local_address());
      node.transport->set_peer(other_id, other.transport->local_address());
    }
    return *node.transport;
  }
  Transport& open(NodeId id, bool with_rpc = true) {
    return open(id, options_for(id, &logs), with_rpc);
  }

  Transport& transport(NodeId id) { return *nodes.at(id).transport; }
  TransportRpc& rpc(NodeId id) { return *nodes.at(id).rpc; }
};

Task<void> close_node(Node* node) {
  if (node->rpc) co_await node->rpc->close();
  if (node->transport) co_await node->transport->close();
  node->rpc.reset();
  node->transport.reset();
}

Task<void> close_all(Cluster* cluster) {
  for (auto& [id, node] : cluster->nodes) co_await close_node(&node);
}

// Polls `done` every millisecond of loop time until it holds; false after `limit`.
template <typename Pred>
Task<bool> eventually(Pred done, Duration limit = kConditionLimit) {
  const TimePoint deadline = Loop::current().now() + limit;
  while (!done()) {
    if (Loop::current().now() > deadline) co_return false;
    co_await sleep_for(std::chrono::milliseconds(1));
  }
  co_return true;
}

template <typename T>
Task<T> after(Duration delay, T value) {
  co_await sleep_for(delay);
  co_return value;
}

// The next envelope, or nullopt after the safety limit.
Task<std::optional<Envelope>> receive_one(Transport* t) {
  std::vector<Task<std::optional<Envelope>>> race;
  race.push_back(t->receive());
  race.push_back(after(kConditionLimit, std::optional<Envelope>()));
  AnyResult<std::optional<Envelope>> first = co_await when_any(std::move(race));
  co_return std::move(first.value);
}

std::size_t encoded_bytes(const Message& m) {
  std::string out;
  encode_message(m, out);
  return out.size();
}

// A ClientRequest whose encoded payload is exactly `bytes` (a varint length, then the string).
ClientRequest request_of_encoded_bytes(std::size_t bytes) {
  ClientRequest m;
  for (std::size_t prefix = 1; prefix <= 5; ++prefix) {
    m.payload.assign(bytes - prefix, 'x');
    if (encoded_bytes(m) == bytes) return m;
  }
  FAIL("no ClientRequest encodes to ", bytes, " bytes");
  return m;
}

// --- messages cross intact -------------------------------------------------------------

Task<void> every_type_crosses(Kind kind) {
  Cluster c{kind};
  c.open(node(0), false);
  c.open(node(1), false);
  test::Rng rng(test::kSeed);
  constexpr std::size_t kPerType = 8;
  // Both directions: on TCP node 0 dials and node 1 accepts; on UDP they are alike.
  for (const auto& [from, to] : std::vector<Direction>{{0, 1}, {1, 0}}) {
    std::map<std::uint64_t, Message> sent;
    std::uint64_t id = 100;
    for (std::size_t t = 0; t < kMessageTypeCount; ++t) {
      for (std::size_t i = 0; i < kPerType; ++i) {
        Message m = test::random_message(static_cast<MessageType>(t), rng);
        if (!tcp(kind) && encoded_bytes(m) > kUdpPayloadBytesMax) continue;
        REQUIRE(c.transport(node(from)).send(node(to), id, m));
        sent.emplace(id++, std::move(m));
      }
    }
    if (tcp(kind)) {  // Reassembly across many reads, and buffer growth.
      AppendEntriesArgs big{Term{7}, node(from), LogIndex{1}, Term{6}, {}, LogIndex{1}};
      for (int e = 0; e < 64; ++e) {
        big.entries.push_back({Term{7}, std::string(16 << 10, static_cast<char>('a' + e % 26))});
      }
      REQUIRE(c.transport(node(from)).send(node(to), id, big));
      sent.emplace(id++, std::move(big));
    }
    CHECK(sent.size() >= kPerType * kMessageTypeCount / 2);
    std::size_t got = 0;
    while (got < sent.size()) {
      std::optional<Envelope> e = co_await receive_one(&c.transport(node(to)));
      REQUIRE(e.has_value());
      CHECK(e->from == node(from));
      const auto it = sent.find(e->request_id);
      REQUIRE(it != sent.end());
      CHECK(e->message == it->second);
      sent.erase(it);
      ++got;
    }
  }
  for (unsigned n : std::vector<unsigned>{0, 1}) {
    const TransportCounters& k = c.transport(node(n)).counters();
    CHECK(k.frame_errors.total() == 0);
    CHECK(k.frames_received > 0);
    CHECK(k.bytes_received > 0);
  }
  CHECK(c.transport(node(0)).counters().frames_sent ==
        c.transport(node(1)).counters().frames_received);
  // Multishot receive works on this kernel (6.0+): no transport had to fall back (a forced
  // single-shot transport is not a fallback and says nothing).
  CHECK_FALSE(c.logs.contains("single-shot"));
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("transport: messages of every type cross intact, both ways", K,
                   URAFT_ALL_KINDS) {
  auto loop = Loop::uring();
  loop->run(every_type_crosses(K::kind));
  CHECK(loop->backend().inflight() == 0);
}

// --- RPC ---------------------------------------------------------------------------------

Task<void> rpc_round_trips(Kind kind) {
  Cluster c{kind};
  c.open(node(0));
  c.open(node(1));
  test::Rng rng(test::kSeed + 1);
  const std::vector<MessageType> requests = {
      MessageType::kRequestVoteArgs, MessageType::kAppendEntriesArgs,
      MessageType::kInstallSnapshotArgs, MessageType::kClientRequest};
  for (const auto& [from, to] : std::vector<Direction>{{0, 1}, {1, 0}}) {
    for (MessageType type : requests) {
      Message request = test::random_message(type, rng);
      if (!tcp(kind) && encoded_bytes(request) > kUdpPayloadBytesMax) {
        request = test::random_message(type, rng);  // Rarely needed; the seed is fixed.
      }
      const Message expected = reply_for(node(from), request);
      RpcResult r = co_await c.rpc(node(from)).call(node(to), std::move(request), kSafeTimeout);
      REQUIRE(r.ok());
      CHECK(*r.reply == expected);
    }
  }
  CHECK(c.echo.served == 2 * requests.size());
  CHECK(c.rpc(node(0)).counters().calls_ok == requests.size());
  CHECK(c.rpc(node(0)).pending_calls() == 0);
  // An unknown peer fails at once.
  RpcResult unknown = co_await c.rpc(node(0)).call(node(9), ask("?"), kSafeTimeout);
  CHECK(unknown.error == RpcError::kUnreachable);
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("rpc: every request type gets its reply, both ways", K,
                   URAFT_ALL_KINDS) {
  auto loop = Loop::uring();
  loop->run(rpc_round_trips(K::kind));
}

struct CallStats {
  int ok = 0;
  int wrong = 0;
  int failed = 0;
};

Task<void> call_worker(TransportRpc* rpc, NodeId to, int worker, int calls, CallStats* stats) {
  for (int i = 0; i < calls; ++i) {
    const std::string payload = std::to_string(worker) + ":" + std::to_string(i);
    Message request = ClientRequest{payload};
    RpcResult r = co_await rpc->call(to, std::move(request), kSafeTimeout);
    if (!r.ok()) {
      ++stats->failed;
    } else if (*r.reply == Message(ClientReply{ClientReply::Status::kOk, rpc->self(), payload})) {
      ++stats->ok;
    } else {
      ++stats->wrong;
    }
  }
}

Task<void> many_concurrent_calls(Kind kind) {
  Cluster c{kind};
  for (unsigned n = 0; n < 3; ++n) c.open(node(n));
  constexpr int kWorkers = 64;  // Calls in flight per (caller, callee) pair.
  constexpr int kCallsEach = 16;
  CallStats stats;
  Scope scope;
  for (const auto& [from, to] : std::vector<Direction>{{0, 1}, {0, 2}, {1, 0}, {2, 1}}) {
    for (int w = 0; w < kWorkers; ++w) {
      scope.spawn(call_worker(&c.rpc(node(from)), node(to), w, kCallsEach, &stats));
    }
  }
  co_await scope.join();
  CHECK(stats.ok == 4 * kWorkers * kCallsEach);
  CHECK(stats.wrong == 0);
  CHECK(stats.failed == 0);
  for (unsigned n = 0; n < 3; ++n) {
    CHECK(c.rpc(node(n)).pending_calls() == 0);
    CHECK(c.rpc(node(n)).counters().replies_late == 0);
  }
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("rpc: many concurrent calls between three nodes all get their own reply", K,
                   URAFT_ALL_KINDS) {
  auto loop = Loop::uring();
  loop->run(many_concurrent_calls(K::kind));
  CHECK(loop->backend().inflight() == 0);
}

// A port on 127.0.0.1 where nothing listens (TCP or UDP): bound by the kernel, then freed.
std::uint16_t dead_port(Kind kind) {
  const int fd = ::socket(AF_INET, tcp(kind) ? SOCK_STREAM : SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr = SocketAddress::loopback(0).to_sockaddr();
  socklen_t len = sizeof addr;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

Task<void> call_to_dead_peer(Kind kind) {
  Cluster c{kind};
  c.open(node(0));
  c.transport(node(0)).set_peer(node(1), SocketAddress::loopback(dead_port(kind)));
  constexpr Duration kTimeout = std::chrono::milliseconds(100);
  // Generous: a sanitizer build on a busy machine is slow, but not a second slow.
  constexpr Duration kSlack = std::chrono::milliseconds(900);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const TimePoint start = Loop::current().now();
    RpcResult r = co_await c.rpc(node(0)).call(node(1), ask("anyone?"), kTimeout);
    const Duration took = Loop::current().now() - start;
    CHECK_FALSE(r.ok());
    CHECK((r.error == RpcError::kTimeout || r.error == RpcError::kUnreachable));
    CHECK(took <= kTimeout + kSlack);
  }
  CHECK(c.rpc(node(0)).pending_calls() == 0);
  if (tcp(kind)) {
    CHECK(c.transport(node(0)).counters().connections_failed > 0);
    CHECK(c.logs.contains("failed"));
  }
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("rpc: a call to a peer that is down fails within its timeout", K,
                   URAFT_ALL_KINDS) {
  auto loop = Loop::uring();
  loop->run(call_to_dead_peer(K::kind));
  CHECK(loop->backend().inflight() == 0);
}

// Calls `to` until one succeeds (each with a short timeout); false after the safety limit.
Task<bool> call_until_ok(TransportRpc* rpc, NodeId to) {
  const TimePoint deadline = Loop::current().now() + kConditionLimit;
  while (Loop::current().now() < deadline) {
    RpcResult r = co_await rpc->call(to, ask("hello again"), std::chrono::milliseconds(100));
    if (r.ok()) co_return true;
    if (r.error == RpcError::kUnreachable) co_await sleep_for(std::chrono::milliseconds(5));
  }
  co_return false;
}

Task<void> restart_peer(Kind kind) {
  Cluster c{kind};
  c.open(node(0));
  c.open(node(1));
  CHECK(co_await call_until_ok(&c.rpc(node(0)), node(1)));
  // Restart each side in turn (on TCP: first the acceptor, then the dialer), where it was.
  for (unsigned restarted : std::vector<unsigned>{1, 0}) {
    const unsigned other = 1 - restarted;
    const SocketAddress where = c.transport(node(restarted)).local_address();
    co_await close_node(&c.nodes[node(restarted)]);
    RpcResult down = co_await c.rpc(node(other)).call(node(restarted), ask("x"),
                                                          std::chrono::milliseconds(50));
    CHECK_FALSE(down.ok());
    TransportOptions options = options_for(node(restarted), &c.logs);
    options.addresses[node(restarted)] = where;
    c.open(node(restarted), std::move(options));
    CHECK(c.transport(node(restarted)).local_address() == where);
    CHECK(co_await call_until_ok(&c.rpc(node(other)), node(restarted)));
    CHECK(co_await call_until_ok(&c.rpc(node(restarted)), node(other)));
  }
  if (tcp(kind)) {
    const auto* tcp = static_cast<TcpTransport*>(&c.transport(node(0)));
    CHECK(tcp->connected(node(1)));
    // Node 0 reconnected after node 1's restart, then connected fresh after its own.
    CHECK(c.transport(node(0)).counters().connections_opened >= 1);
    CHECK(c.transport(node(1)).counters().connections_opened >= 1);
  }
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("transport: calls work again after a peer restarts on the same port", K,
                   URAFT_ALL_KINDS) {
  auto loop = Loop::uring();
  loop->run(restart_peer(K::kind));
  CHECK(loop->backend().inflight() == 0);
}

Task<void> wrong_cluster_rejected(Kind kind) {
  Cluster c{kind};
  Transport& target = c.open(node(1), false);
  // A node of another cluster that believes node 1 is its peer (a stale address, say). With
  // id 0 it is the one that dials, on TCP.
  TransportOptions foreign_options = options_for(node(0), &c.logs, kOtherCluster);
  foreign_options.addresses[node(1)] = target.local_address();
  std::unique_ptr<Transport> foreign = open_transport(kind, std::move(foreign_options));
  REQUIRE(foreign->send(node(1), 1, ClientRequest{"from elsewhere"}));
  auto rejected = [&] { return target.counters().frame_errors[FrameError::kWrongCluster] >= 1; };
  CHECK(co_await eventually(rejected));
  CHECK(target.counters().frames_received == 0);
  CHECK(c.logs.contains("wrong_cluster"));
  if (tcp(kind)) CHECK(target.counters().connections_rejected >= 1);
  co_await foreign->close();
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("transport: frames from another cluster are rejected and counted", K,
                   URAFT_ALL_KINDS) {
  auto loop = Loop::uring();
  loop->run(wrong_cluster_rejected(K::kind));
  CHECK(loop->backend().inflight() == 0);
}

Task<void> peer_never_reads(Kind kind) {
  Cluster c{kind};
  TransportOptions sender_options = options_for(node(0), &c.logs);
  sender_options.send_queue_frames_max = 64;
  Transport& sender = c.open(node(0), std::move(sender_options), false);
  TransportOptions sink_options = options_for(node(1), &c.logs);
  sink_options.receive_queue_max = 4;  // Nobody ever calls receive() on node 1.
  Transport& sink = c.open(node(1), std::move(sink_options), false);
  const ClientRequest request{std::string(tcp(kind) ? 60000 : 1000, 'q')};
  // First the sink is up and reading (on TCP, connected): the drops below are its fault.
  REQUIRE(sender.send(node(1), 0, request));
  auto arrived = [&] { return sink.counters().frames_received == 1; };
  REQUIRE(co_await eventually(arrived));
  // Send a batch per loop turn until something is dropped for lack of room.
  auto dropped = [&] {
    return tcp(kind) ? sender.counters().dropped_queue_full
                              : sink.counters().dropped_receive_full;
  };
  const TimePoint deadline = Loop::current().now() + kConditionLimit;
  std::uint64_t id = 1;
  while (dropped() == 0 && Loop::current().now() < deadline) {
    for (int i = 0; i < 16; ++i) (void)sender.send(node(1), id++, request);
    co_await yield();
  }
  CHECK(dropped() > 0);
  if (tcp(kind)) {
    const auto* tcp = static_cast<const TcpTransport*>(&sender);
    CHECK(tcp->queued_frames(node(1)) <= 64);
    CHECK(tcp->connected(node(1)));  // Slow is not dead: the connection stays.
  } else {
    // The UDP send bound: at most kUdpSendSlotsMax datagrams in the kernel's hands at once.
    const std::uint64_t before = sender.counters().dropped_queue_full;
    for (std::size_t i = 0; i < kUdpSendSlotsMax + 10; ++i) {
      (void)sender.send(node(1), id++, request);
    }
    CHECK(sender.counters().dropped_queue_full >= before + 10);
  }
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("transport: a peer that never reads makes bounded queues drop, counted", K,
                   URAFT_ALL_KINDS) {
  auto loop = Loop::uring();
  loop->run(peer_never_reads(K::kind));
  CHECK(loop->backend().inflight() == 0);
}

Task<void> late_and_duplicate_replies(Kind kind) {
  Cluster c{kind};
  c.open(node(0));
  c.open(node(1));
  GatedHandler gated;
  c.rpc(node(1)).serve(&gated);
  // Late: the call times out while the handler waits; the reply arrives after.
  RpcResult r = co_await c.rpc(node(0)).call(node(1), ask("slow"),
                                                std::chrono::milliseconds(50));
  CHECK(r.error == RpcError::kTimeout);
  CHECK(gated.started == 1);
  CHECK(c.rpc(node(0)).pending_calls() == 0);
  gated.release.set();
  auto cond1 = [&] { return c.rpc(node(0)).counters().replies_late == 1; };
  CHECK(co_await eventually(cond1));
  CHECK(c.rpc(node(0)).counters().calls_timeout == 1);

  // Duplicate, and from the wrong peer: node 2 answers by hand, twice, and node 3 forges one.
  Transport& manual = c.open(node(2), false);
  Transport& forger = c.open(node(3), false);
  Scope scope;
  RpcResult answered;
  struct Call {
    static Task<void> run(TransportRpc* rpc, RpcResult* out) {
      *out = co_await rpc->call(node(2), ask("twice"), kSafeTimeout);
    }
  };
  scope.spawn(Call::run(&c.rpc(node(0)), &answered));
  std::optional<Envelope> request = co_await receive_one(&manual);
  REQUIRE(request.has_value());
  const Message reply = reply_for(node(0), request->message);
  REQUIRE(forger.send(node(0), request->request_id, reply));
  auto cond2 = [&] { return c.rpc(node(0)).counters().replies_wrong_peer == 1; };
  CHECK(co_await eventually(cond2));
  REQUIRE(manual.send(node(0), request->request_id, reply));
  REQUIRE(manual.send(node(0), request->request_id, reply));
  co_await scope.join();
  CHECK(answered.ok());
  auto cond3 = [&] { return c.rpc(node(0)).counters().replies_late == 2; };
  CHECK(co_await eventually(cond3));
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("rpc: late, duplicate and misaddressed replies are dropped and counted", K,
                   URAFT_ALL_KINDS) {
  auto loop = Loop::uring();
  loop->run(late_and_duplicate_replies(K::kind));
  CHECK(loop->backend().inflight() == 0);
}

Task<void> close_cancels_everything(Kind kind) {
  Cluster c{kind};
  c.open(node(0));
  c.open(node(1));
  GatedHandler gated;  // Never released.
  c.rpc(node(1)).serve(&gated);
  RpcResult waiting;
  struct Call {
    static Task<void> run(TransportRpc* rpc, RpcResult* out) {
      *out = co_await rpc->call(node(1), ask("forever"), kSafeTimeout);
    }
  };
  Scope scope;
  scope.spawn(Call::run(&c.rpc(node(0)), &waiting));
  co_await gated.entered.wait();
  CHECK(c.rpc(node(1)).handlers_inflight() == 1);
  co_await c.rpc(node(1)).close();  // Cancels the handler and joins it.
  CHECK(gated.cancelled == 1);
  CHECK(c.rpc(node(1)).handlers_inflight() == 0);
  co_await c.rpc(node(0)).close();  // The waiting call returns kClosed.
  co_await scope.join();
  CHECK(waiting.error == RpcError::kClosed);
  RpcResult late_call = co_await c.rpc(node(0)).call(node(1), ask("?"), kSafeTimeout);
  CHECK(late_call.error == RpcError::kClosed);
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("rpc: close() fails waiting calls with kClosed and cancels handlers", K,
                   URAFT_ALL_KINDS) {
  auto loop = Loop::uring();
  loop->run(close_cancels_everything(K::kind));
  CHECK(loop->backend().inflight() == 0);
}

// Throws for ClientRequest "boom", echoes everything else.
class ThrowingHandler final : public RpcHandler {
 public:
  Task<Message> handle(NodeId from, Message request) override {
    const auto* m = std::get_if<ClientRequest>(&request);
    if (m != nullptr && m->payload == "boom") throw std::runtime_error("handler failed");
    co_return reply_for(from, request);
  }
};

Task<void> handler_errors_are_contained(Kind kind) {
  Cluster c{kind};
  c.open(node(0));
  c.open(node(1));
  ThrowingHandler throwing;
  c.rpc(node(1)).serve(&throwing);
  RpcResult r = co_await c.rpc(node(0)).call(node(1), ask("boom"), std::chrono::milliseconds(50));
  CHECK(r.error == RpcError::kTimeout);
  CHECK(c.rpc(node(1)).counters().handler_errors == 1);
  CHECK(c.rpc(node(1)).handlers_inflight() == 0);
  r = co_await c.rpc(node(0)).call(node(1), ask("fine"), kSafeTimeout);  // It serves on.
  CHECK(r.ok());
  // No handler at all: requests are refused (unanswered) and counted.
  c.rpc(node(1)).serve(nullptr);
  r = co_await c.rpc(node(0)).call(node(1), ask("anyone?"), std::chrono::milliseconds(50));
  CHECK(r.error == RpcError::kTimeout);
  CHECK(c.rpc(node(1)).counters().requests_refused == 1);
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("rpc: a handler that throws fails its own request only", K, TcpKind, UdpKind) {
  auto loop = Loop::uring();
  loop->run(handler_errors_are_contained(K::kind));
  CHECK(loop->backend().inflight() == 0);
}

// --- TCP only ----------------------------------------------------------------------------

Task<int> raw_connect(SocketAddress to) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  const sockaddr_in addr = to.to_sockaddr();
  IoResult r = co_await io::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  REQUIRE(r.ok());
  co_return fd;
}

Task<void> raw_send(int fd, std::string bytes) {
  IoResult r = co_await io::send(fd, byte_span(bytes));
  REQUIRE(r.bytes() == bytes.size());
}

// Everything the other side sends until it closes the connection.
Task<std::string> read_until_closed(int fd) {
  std::string all;
  std::byte buf[4096];
  for (;;) {
    IoResult r = co_await io::recv(fd, buf);
    if (r.res <= 0) break;  // EOF, or a reset: closed either way.
    all.append(reinterpret_cast<const char*>(buf), r.bytes());
  }
  co_return all;
}

Task<void> garbage_closes_one_connection(Kind kind) {
  Cluster c{kind};
  // Node 3 also lists a node 0 that does not run: a raw socket will claim to be it.
  c.open(node(1));
  c.open(node(2));
  TransportOptions options = options_for(node(3), &c.logs);
  options.addresses[node(0)] = SocketAddress::loopback(dead_port(kind));
  Transport& target = c.open(node(3), std::move(options));
  for (unsigned n : std::vector<unsigned>{1, 2}) {
    REQUIRE(co_await call_until_ok(&c.rpc(node(n)), node(3)));
  }
  const std::uint64_t opened_1 = c.transport(node(1)).counters().connections_opened;
  const std::uint64_t opened_2 = c.transport(node(2)).counters().connections_opened;

  // Garbage instead of a hello.
  int fd = co_await raw_connect(target.local_address());
  co_await raw_send(fd, "GET / HTTP/1.1\r\nHost: uraft\r\n\r\n");
  std::string answer = co_await read_until_closed(fd);
  ::close(fd);
  CHECK(answer.empty());
  CHECK(target.counters().frame_errors[FrameError::kBadMagic] == 1);

  // A good hello, then a frame corrupted in transit.
  fd = co_await raw_connect(target.local_address());
  std::string frame;
  REQUIRE(encode_frame(kCluster, 1, ClientRequest{"a fine request"}, frame));
  frame.back() = static_cast<char>(frame.back() ^ 0x20);
  co_await raw_send(fd, tcp_hello(kCluster, node(0)) + frame);
  answer = co_await read_until_closed(fd);
  ::close(fd);
  CHECK(answer == tcp_hello(kCluster, node(3)));  // It answered the hello, then closed.
  CHECK(target.counters().frame_errors[FrameError::kBadCrc] == 1);

  // A hello from a node that may not dial here (a higher id), and one from a stranger.
  for (unsigned claimed : std::vector<unsigned>{4, 7}) {
    fd = co_await raw_connect(target.local_address());
    co_await raw_send(fd, tcp_hello(kCluster, node(claimed)));
    answer = co_await read_until_closed(fd);
    ::close(fd);
    CHECK(answer.empty());
  }
  CHECK(target.counters().connections_rejected == 4);
  CHECK(target.counters().frame_errors.total() == 2);
  CHECK(c.logs.contains("bad_magic"));
  CHECK(c.logs.contains("bad_crc"));
  CHECK(target.counters().frames_received > 0);

  // The real peers never noticed.
  for (unsigned n : std::vector<unsigned>{1, 2}) {
    RpcResult r = co_await c.rpc(node(n)).call(node(3), ask("still there?"), kSafeTimeout);
    CHECK(r.ok());
    r = co_await c.rpc(node(3)).call(node(n), ask("yes"), kSafeTimeout);
    CHECK(r.ok());
  }
  CHECK(c.transport(node(1)).counters().connections_opened == opened_1);
  CHECK(c.transport(node(2)).counters().connections_opened == opened_2);
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("tcp: bad input closes that connection only, counted and logged", K, TcpKind,
                   TcpSingleShotKind) {
  auto loop = Loop::uring();
  loop->run(garbage_closes_one_connection(K::kind));
  CHECK(loop->backend().inflight() == 0);
}

Task<void> frames_coalesce() {
  Cluster c{Kind::kTcp};
  Transport& a = c.open(node(0), false);
  Transport& b = c.open(node(1), false);
  REQUIRE(a.send(node(1), 1, ClientRequest{"first"}));
  REQUIRE((co_await receive_one(&b)).has_value());
  const std::uint64_t before = a.counters().frames_sent;
  // Frames queued within one turn go out together: the writer wakes once for all of them.
  constexpr int kFrames = 100;
  for (int i = 0; i < kFrames; ++i) REQUIRE(a.send(node(1), 2 + i, ClientRequest{"burst"}));
  CHECK(static_cast<const TcpTransport&>(a).queued_frames(node(1)) == kFrames);
  for (int i = 0; i < kFrames; ++i) REQUIRE((co_await receive_one(&b)).has_value());
  CHECK(a.counters().frames_sent == before + kFrames);
  co_await close_all(&c);
}

TEST_CASE("tcp: frames queued within a loop turn are handed to one writer in one go") {
  auto loop = Loop::uring();
  loop->run(frames_coalesce());
}

// --- UDP only ----------------------------------------------------------------------------

Task<void> udp_size_limit(Kind kind) {
  Cluster c{kind};
  Transport& a = c.open(node(0));
  Transport& b = c.open(node(1), false);
  // The largest message that fits crosses; one byte more is refused at once, counted, logged.
  const ClientRequest largest = request_of_encoded_bytes(kUdpPayloadBytesMax);
  REQUIRE(a.send(node(1), 1, largest));
  std::optional<Envelope> e = co_await receive_one(&b);
  REQUIRE(e.has_value());
  CHECK(e->message == Message(largest));
  const ClientRequest too_large = request_of_encoded_bytes(kUdpPayloadBytesMax + 1);
  CHECK_FALSE(a.send(node(1), 2, too_large));
  CHECK(a.counters().dropped_oversized == 1);
  CHECK(c.logs.contains("UDP datagram limit"));
  // Through RPC, the call fails at once rather than waiting for its timeout.
  const TimePoint start = Loop::current().now();
  RpcResult r = co_await c.rpc(node(0)).call(node(1), too_large, kSafeTimeout);
  CHECK(r.error == RpcError::kUnreachable);
  CHECK(Loop::current().now() - start < std::chrono::seconds(1));
  CHECK(a.counters().dropped_oversized == 2);
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("udp: messages above kUdpPayloadBytesMax are refused and counted", K, UdpKind,
                   UdpSingleShotKind) {
  auto loop = Loop::uring();
  loop->run(udp_size_limit(K::kind));
  CHECK(loop->backend().inflight() == 0);
}

Task<void> udp_bad_datagrams(Kind kind) {
  Cluster c{kind};
  Transport& target = c.open(node(1), false);
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  const sockaddr_in to = target.local_address().to_sockaddr();
  auto send_raw = [&](const std::string& bytes) {
    REQUIRE(::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                     sizeof to) == static_cast<ssize_t>(bytes.size()));
  };
  std::string good;
  REQUIRE(encode_frame(kCluster, 5, ClientRequest{"from a stranger"}, good));
  send_raw("not a frame at all, but long enough to have a header");
  send_raw(good.substr(0, good.size() - 1));  // Truncated.
  send_raw(good + "tail");                    // Trailing bytes.
  send_raw(good);                             // Well formed, but from an unknown address.
  auto all_counted = [&] {
    const TransportCounters& k = target.counters();
    return k.frame_errors.total() == 3 && k.dropped_unknown_sender == 1;
  };
  CHECK(co_await eventually(all_counted));
  CHECK(target.counters().frame_errors[FrameError::kBadMagic] == 1);
  CHECK(target.counters().frame_errors[FrameError::kNeedMoreBytes] == 1);
  CHECK(target.counters().frame_errors[FrameError::kBadPayload] == 1);
  CHECK(target.counters().frames_received == 0);
  ::close(fd);
  co_await close_all(&c);
}

TEST_CASE_TEMPLATE("udp: malformed datagrams and strangers are dropped and counted", K, UdpKind,
                   UdpSingleShotKind) {
  auto loop = Loop::uring();
  loop->run(udp_bad_datagrams(K::kind));
}

TEST_CASE("addresses parse and print as a.b.c.d:port") {
  const auto a = SocketAddress::parse("127.0.0.1:7001");
  REQUIRE(a.has_value());
  CHECK(a->ip == INADDR_LOOPBACK);
  CHECK(a->port == 7001);
  CHECK(a->to_string() == "127.0.0.1:7001");
  CHECK(SocketAddress::from_sockaddr(a->to_sockaddr()) == *a);
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "localhost:1",
                          "127.0.0.1:12x", ":80"}) {
    CHECK_MESSAGE(!SocketAddress::parse(bad).has_value(), bad);
  }
}

TEST_CASE("is_reply tells replies from requests") {
  CHECK(is_reply(RequestVoteReply{}));
  CHECK(is_reply(AppendEntriesReply{}));
  CHECK(is_reply(InstallSnapshotReply{}));
  CHECK(is_reply(ClientReply{}));
  CHECK_FALSE(is_reply(RequestVoteArgs{}));
  CHECK_FALSE(is_reply(AppendEntriesArgs{}));
  CHECK_FALSE(is_reply(InstallSnapshotArgs{}));
  CHECK_FALSE(is_reply(ClientRequest{}));
}

}  // namespace
}  // namespace uraft
