#include "net/sim_network.h"

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <memory>
#include <optional>
#include <utility>

#include "core/assert.h"
#include "core/loop.h"
#include "core/scope.h"
#include "net/frame.h"
#include "net/codec.h"

namespace uraft {
namespace {

Duration ms(std::uint64_t n) { return std::chrono::milliseconds(static_cast<std::int64_t>(n)); }

// now + timeout, saturating: callers pass Duration::max() for "no timeout".
TimePoint deadline_after(TimePoint now, Duration timeout) {
  if (timeout <= Duration::zero()) return now;
  if (timeout >= TimePoint::max() - now) return TimePoint::max();
  return now + timeout;
}

constexpr std::uint64_t kSimClusterId = 1;  // The frames' cluster id when frames are on.

// A link's extra delay, uniform in [delay_min, delay_max], or in its tail.
Duration draw_delay(Rng& rng, const LinkFaults& faults) {
  if (faults.tail_per_mille > 0 && rng.uniform(0, 999) < faults.tail_per_mille) {
    const auto tail = static_cast<std::uint64_t>((faults.tail_max - faults.delay_max).count());
    return faults.delay_max + Duration(static_cast<Duration::rep>(rng.uniform(0, tail)));
  }
  const auto spread = static_cast<std::uint64_t>((faults.delay_max - faults.delay_min).count());
  return faults.delay_min + Duration(static_cast<Duration::rep>(rng.uniform(0, spread)));
}

// Trace codes for call outcomes, mixed into the loop's trace hash.
enum class Outcome : std::uint64_t { kReply = 1, kDropped, kTimeout, kClosed, kCancelled };

std::uint64_t trace_word(NodeId from, NodeId to, Outcome outcome) {
  return (std::uint64_t{from.value} << 36) ^ (std::uint64_t{to.value} << 8) ^
         static_cast<std::uint64_t>(outcome);
}

}  // namespace

// One instance's ends: node `self`'s client ends to every peer, each with labrpc's enable flag.
// A plain record the network reads and writes directly.
class SimNetwork::Endpoint final : public RpcEndpoint {
 public:
  Endpoint(SimNetwork& net, NodeId self) : net_(net), self_(self), enabled_(net.size(), false) {}

  NodeId self() const noexcept override { return self_; }
  Task<RpcResult> call(NodeId peer, Message request, Duration timeout) override {
    return net_.call(this, peer, std::move(request), timeout);
  }
  // AddServer(self, handler); a retired instance's endpoint no longer owns the node's slot.
  void serve(RpcHandler* handler) override {
    if (!retired_) net_.install_server(self_, handler);
  }

  SimNetwork& net_;
  NodeId self_;
  std::vector<bool> enabled_;  // enabled_[to]: labrpc's enabled[endname] for the end to `to`.
  bool retired_ = false;       // Its instance crashed: every end is disabled for good.
};

// A labrpc Server: one handler, with its count of incoming RPCs. Its address is its identity
// (labrpc compares *Server pointers), so Servers are only freed with the network.
struct SimNetwork::Server {
  Server(RpcHandler* h, CancelToken closing) : handler(h), handlers(closing) {}
  RpcHandler* handler;
  std::uint64_t rpc_count = 0;
  bool deleted = false;  // DeleteServer'd or replaced: its handler object may be gone.
  Scope handlers;        // Its running handler tasks.
};

// One dispatched request, shared by the call (which may give up) and the handler task (which
// may outlive the call). The handler task writes it; the call reads it.
struct SimNetwork::Dispatch {
  std::optional<Message> reply;  // Set iff the handler returned normally.
  bool done = false;
  Wait* waiter = nullptr;  // The call's suspended wait, if any.
  void finish() noexcept;
};

// The one way a call waits: until `until`, or until its dispatched handler finishes, but never
// past the caller's deadline. The caller's cancellation wakes it at once (it then throws
// Cancelled); so does close() (it then reports kClosed). A timer that already fired is never
// woken a second time (see the check on node_.armed()).
class SimNetwork::Wait {
 public:
  enum class End { kReached, kDeadline, kClosed };

  Wait(SimNetwork& net, TimePoint until, TimePoint deadline, Dispatch* slot = nullptr)
      : net_(net), loop_(Loop::current()), until_(until), deadline_(deadline), slot_(slot) {}
  Wait(const Wait&) = delete;
  Wait& operator=(const Wait&) = delete;
  ~Wait() { detach(); }

  bool await_ready() const noexcept {
    return net_.closed_ || (slot_ != nullptr && slot_->done) ||
           loop_.now() >= std::min(until_, deadline_);
  }

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    if (!token_of(h).register_callback(cancel_, &Wait::on_cancel, this)) {
      cancelled_ = true;
      return false;
    }
    if (!net_.closing_.token().register_callback(close_, &Wait::on_close, this)) return false;
    node_.waiter = h;
    node_.deadline = std::min(until_, deadline_);
    URAFT_ASSERT(node_.deadline != TimePoint::max());  // Some bound is always finite.
    loop_.arm(node_);
    if (slot_ != nullptr) slot_->waiter = this;
    return true;
  }

  // The call's result when a wait ends early: the caller's deadline, or close().
  static RpcResult failure(End end) {
    URAFT_ASSERT(end != End::kReached);
    return RpcResult::failure(end == End::kDeadline ? RpcError::kTimeout : RpcError::kClosed);
  }

  End await_resume() {
    detach();
    if (cancelled_) throw Cancelled{};
    if (net_.closed_) return End::kClosed;
    if (slot_ != nullptr && slot_->done) return End::kReached;
    if (loop_.now() >= until_) return End::kReached;  // A tie with the deadline: labrpc wins.
    URAFT_ASSERT(loop_.now() >= deadline_);
    return End::kDeadline;
  }

  // Resumes the waiting call now, unless its timer already fired (it is queued then).
  void wake() noexcept {
    if (!node_.armed()) return;
    loop_.disarm(node_);
    loop_.schedule(node_.waiter);
  }

 private:
  static void on_cancel(void* self) noexcept {
    auto* w = static_cast<Wait*>(self);
    w->cancelled_ = true;
    w->wake();
  }
  static void on_close(void* self) noexcept { static_cast<Wait*>(self)->wake(); }

  void detach() noexcept {
    cancel_.reset();
    close_.reset();
    loop_.disarm(node_);
    if (slot_ != nullptr && slot_->waiter == this) slot_->waiter = nullptr;
  }

  SimNetwork& net_;
  Loop& loop_;
  TimePoint until_;
  TimePoint deadline_;
  Dispatch* slot_;
  TimerNode node_;
  CancelCallback cancel_;
  CancelCallback close_;
  bool cancelled_ = false;
};

void SimNetwork::Dispatch::finish() noexcept {
  done = true;
  if (waiter != nullptr) waiter->wake();
}

// Counts the calls inside the network, so close() can wait until none is left.
struct SimNetwork::CallGuard {
  explicit CallGuard(SimNetwork& n) : net(n) {
    if (net.calls_in_flight_++ == 0) net.calls_idle_.reset();
  }
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;
  ~CallGuard() {
    if (--net.calls_in_flight_ == 0) net.calls_idle_.set();
  }
  SimNetwork& net;
};

// --- topology and controls ---

SimNetwork::SimNetwork(std::size_t nodes) : nodes_(nodes) {
  URAFT_ASSERT(nodes > 0);
  URAFT_ASSERT(nodes < kNoNode.value);
  calls_idle_.set();
  for (std::size_t i = 0; i < nodes; ++i) replace_ends(NodeId{static_cast<std::uint32_t>(i)});
}

SimNetwork::~SimNetwork() {
  URAFT_ASSERT(calls_in_flight_ == 0);  // co_await close() first.
  for (const auto& server : servers_) URAFT_ASSERT(server->handlers.active() == 0);
}

SimNetwork::Node& SimNetwork::node(NodeId id) {
  URAFT_ASSERT(id.value < nodes_.size());
  return nodes_[id.value];
}

const SimNetwork::Node& SimNetwork::node(NodeId id) const {
  URAFT_ASSERT(id.value < nodes_.size());
  return nodes_[id.value];
}

RpcEndpoint& SimNetwork::endpoint(NodeId id) { return *node(id).endpoint; }

void SimNetwork::set_enabled(NodeId from, NodeId to, bool enabled) {
  URAFT_ASSERT(to.value < nodes_.size());
  node(from).endpoint->enabled_[to.value] = enabled;
}

bool SimNetwork::enabled(NodeId from, NodeId to) const {
  URAFT_ASSERT(to.value < nodes_.size());
  return node(from).endpoint->enabled_[to.value];
}

void SimNetwork::connect(NodeId id) {
  node(id).connected = true;
  for (std::uint32_t j = 0; j < nodes_.size(); ++j) {
    if (!nodes_[j].connected) continue;
    set_enabled(id, NodeId{j}, true);  // Outgoing; includes the self-end.
    set_enabled(NodeId{j}, id, true);  // Incoming.
  }
}

void SimNetwork::disconnect(NodeId id) {
  node(id).connected = false;
  for (std::uint32_t j = 0; j < nodes_.size(); ++j) {
    set_enabled(id, NodeId{j}, false);
    set_enabled(NodeId{j}, id, false);
  }
}

bool SimNetwork::connected(NodeId id) const { return node(id).connected; }

void SimNetwork::install_server(NodeId id, RpcHandler* handler) {
  delete_server(id);
  if (handler == nullptr || closed_) return;
  servers_.push_back(std::make_unique<Server>(handler, closing_.token()));
  node(id).server = servers_.back().get();
}

SimNetwork::Server* SimNetwork::delete_server(NodeId id) {
  Server* old = std::exchange(node(id).server, nullptr);
  if (old != nullptr) {
    old->deleted = true;
    old->handlers.cancel();
  }
  return old;
}

// Fresh ends for node id's next instance (config.go start1's MakeEnd: they start disabled); the
// previous instance's ends are retired for good.
void SimNetwork::replace_ends(NodeId id) {
  Node& n = node(id);
  if (n.endpoint != nullptr) n.endpoint->retired_ = true;
  endpoints_.push_back(std::make_unique<Endpoint>(*this, id));
  n.endpoint = endpoints_.back().get();
}

Task<void> SimNetwork::crash(NodeId id) {
  Server* old = delete_server(id);
  replace_ends(id);
  if (old != nullptr) co_await old->handlers.join();
}

void SimNetwork::restart(NodeId id, RpcHandler* handler) { install_server(id, handler); }

void SimNetwork::partition(const std::vector<std::vector<NodeId>>& groups) {
  // Unlisted nodes get groups of their own, numbered after the listed ones.
  constexpr std::uint32_t kUnassigned = ~std::uint32_t{0};
  for (auto& n : nodes_) n.group = kUnassigned;
  std::uint32_t next = 0;
  for (const auto& group : groups) {
    for (NodeId id : group) {
      URAFT_ASSERT(node(id).group == kUnassigned);  // A node is in one group at most.
      node(id).group = next;
    }
    ++next;
  }
  for (auto& n : nodes_) {
    if (n.group == kUnassigned) n.group = next++;
  }
}

void SimNetwork::heal() {
  for (auto& n : nodes_) n.group = 0;
}

void SimNetwork::set_link(NodeId from, NodeId to, LinkFaults faults) {
  URAFT_ASSERT(from.value < nodes_.size());
  URAFT_ASSERT(to.value < nodes_.size());
  URAFT_ASSERT(faults.delay_min >= Duration::zero());
  URAFT_ASSERT(faults.delay_min <= faults.delay_max);
  URAFT_ASSERT(faults.loss_per_mille <= 1000);
  const auto key = std::make_pair(from.value, to.value);
  if (faults == LinkFaults{}) {
    links_.erase(key);
  } else {
    links_[key] = faults;
  }
}

const LinkFaults* SimNetwork::link(NodeId from, NodeId to) const {
  if (links_.empty()) return nullptr;
  auto it = links_.find(std::make_pair(from.value, to.value));
  return it == links_.end() ? nullptr : &it->second;
}

std::uint64_t SimNetwork::rpc_count(NodeId id) const {
  const Server* server = node(id).server;
  return server != nullptr ? server->rpc_count : 0;
}

// labrpc's enabled[endname], extended: a retired instance's ends and ends across a partition
// are disabled too.
bool SimNetwork::end_enabled(const Endpoint& end, NodeId to) const {
  return !end.retired_ && end.enabled_[to.value] && node(end.self_).group == node(to).group;
}

// labrpc isServerDead: `!enabled[endname] || servers[servername] != server`.
bool SimNetwork::server_dead(const Endpoint& end, NodeId to, const Server* server) const {
  return !end_enabled(end, to) || node(to).server != server;
}

std::size_t SimNetwork::encoded_size(const Message& m) {
  scratch_.clear();
  encode_message(m, scratch_);
  return scratch_.size();
}

bool SimNetwork::cross_wire(Message& m, const LinkFaults* faults) {
  frame_.clear();
  if (!encode_frame(kSimClusterId, 0, m, frame_)) return false;
  Rng& rng = Loop::current().rng();
  if (faults != nullptr && faults->corrupt_per_mille > 0 &&
      rng.uniform(0, 999) < faults->corrupt_per_mille) {
    frame_[rng.uniform(0, frame_.size() - 1)] ^= static_cast<char>(1u << rng.uniform(0, 7));
  }
  DecodedFrame decoded = decode_frame(byte_span(frame_), kSimClusterId);
  if (decoded.error) {
    ++frames_refused_;
    return false;
  }
  m = std::move(decoded.message);
  return true;
}

// --- calls ---

Task<RpcResult> SimNetwork::call(Endpoint* end, NodeId to, Message request, Duration timeout) {
  URAFT_ASSERT(to.value < nodes_.size());
  Loop& loop = Loop::current();
  const NodeId from = end->self_;
  // labrpc Call: a Cleanup'd network refuses the request before counting it.
  if (closed_) {
    loop.trace(trace_word(from, to, Outcome::kClosed));
    co_return RpcResult::failure(RpcError::kClosed);
  }
  // labrpc's dispatcher goroutine: every Call counts, with its request bytes, whatever
  // becomes of it afterwards.
  ++total_count_;
  const std::size_t request_bytes = encoded_size(request);
  total_bytes_ += request_bytes;
  // As a real transport does: a request that fits no frame is refused before it leaves.
  if (request_bytes > kFramePayloadBytesMax) co_return RpcResult::failure(RpcError::kUnreachable);
  CallGuard guard(*this);
  const TimePoint deadline = deadline_after(loop.now(), timeout);
  Outcome outcome = Outcome::kCancelled;
  try {
    RpcResult result = co_await process_request(end, to, std::move(request), deadline);
    if (result.ok()) {
      outcome = Outcome::kReply;
    } else {
      outcome = result.error == RpcError::kTimeout  ? Outcome::kTimeout
                : result.error == RpcError::kClosed ? Outcome::kClosed
                                                    : Outcome::kDropped;
    }
    loop.trace(trace_word(from, to, outcome));
    co_return result;
  } catch (const Cancelled&) {
    loop.trace(trace_word(from, to, outcome));
    throw;
  }
}

// labrpc processReq, step by step. `request` is the caller's; the outcome is decided here.
//
// The caller's timeout is a deadline that every wait of the call respects, rather than a
// when_any of this task and a timer: the call is a single sequence of waits, so it is the same
// race, without a second task per call and a Cancelled exception on every reply, and a tie
// has one rule (labrpc's outcome wins). A caller that gives up, by timeout or cancellation,
// drops whatever was still to come: pending sleeps disarm with their frames.
Task<RpcResult> SimNetwork::process_request(Endpoint* end, NodeId to, Message request,
                                            TimePoint deadline) {
  using End = Wait::End;
  Loop& loop = Loop::current();
  Rng& rng = loop.rng();
  const NodeId from = end->self_;

  // readEndnameInfo: enabled, the server, and the modes, read once at the start.
  Server* const server = end_enabled(*end, to) ? node(to).server : nullptr;
  const bool reliable = reliable_;
  const bool long_reordering = long_reordering_;

  if (server == nullptr) {
    // "simulate no reply and eventual timeout": the end is disabled (or partitioned, or its
    // instance crashed), or the peer has no server. The handler never runs.
    const std::uint64_t delay_ms = long_delays_ ? rng.uniform(0, long_delay_ms_bound - 1)
                                                : rng.uniform(0, short_fail_delay_ms_bound - 1);
    const End waited = co_await Wait(*this, loop.now() + ms(delay_ms), deadline);
    if (waited != End::kReached) co_return Wait::failure(waited);
    co_return RpcResult::failure(RpcError::kDropped);
  }

  // 1. Unreliable: a short delay.
  if (!reliable) {
    const End waited = co_await Wait(*this, loop.now() + ms(rng.uniform(0, short_delay_ms_max)),
                                     deadline);
    if (waited != End::kReached) co_return Wait::failure(waited);
  }
  // 2. Unreliable: drop the request, "return as if timeout" (at once).
  if (!reliable && rng.uniform(0, 999) < unreliable_loss_per_mille) {
    co_return RpcResult::failure(RpcError::kDropped);
  }
  // Extension: the request crosses the link from -> to. (A copy: set_link may replace the
  // link's faults while the request is on its way.)
  if (const LinkFaults* link_faults = link(from, to)) {
    const LinkFaults faults = *link_faults;
    if (rng.uniform(0, 999) < faults.loss_per_mille) {
      co_return RpcResult::failure(RpcError::kDropped);
    }
    const End waited = co_await Wait(*this, loop.now() + draw_delay(rng, faults), deadline);
    if (waited != End::kReached) co_return Wait::failure(waited);
    if (faults.duplicate_per_mille > 0 && !std::holds_alternative<ClientRequest>(request) &&
        rng.uniform(0, 999) < faults.duplicate_per_mille && !server->deleted) {
      server->handlers.spawn(dispatch(this, server, from, to, request, std::make_shared<Dispatch>()));
    }
  }

  if (frames_ && !cross_wire(request, link(from, to))) {
    co_return RpcResult::failure(RpcError::kDropped);
  }

  // 3. Run the handler in a task of its own, so that the call can keep checking whether the
  // server has been killed; check every 100 ms, as labrpc polls.
  auto slot = std::make_shared<Dispatch>();
  server->handlers.spawn(dispatch(this, server, from, to, std::move(request), slot));
  bool dead = false;
  while (!slot->done && !dead) {
    const End waited =
        co_await Wait(*this, loop.now() + server_check_interval, deadline, slot.get());
    if (waited != End::kReached) co_return Wait::failure(waited);
    if (!slot->done) dead = server_dead(*end, to, server);
  }

  // 4. "do not reply if DeleteServer() has been called, i.e. the server has been killed":
  // re-check after the handler returned.
  dead = server_dead(*end, to, server);

  // 5. The outcome.
  if (!slot->reply || dead) {
    // The handler failed, or the server died while we waited: its side effects stand, but
    // no reply gets through.
    co_return RpcResult::failure(RpcError::kDropped);
  }
  if (!reliable && rng.uniform(0, 999) < unreliable_loss_per_mille) {
    co_return RpcResult::failure(RpcError::kDropped);  // Drop the reply; the handler did run.
  }
  Duration delay = Duration::zero();
  if (long_reordering && rng.uniform(0, reorder_chance_denominator - 1) < reorder_chance_numerator) {
    // 200 + rand.Intn(1 + rand.Intn(2000)): the inner draw first, then [0, inner].
    const std::uint64_t inner = rng.uniform(0, reorder_spread_ms - 1);
    delay = ms(reorder_delay_ms_min + rng.uniform(0, inner));
  }
  // Extension: the reply crosses the link to -> from.
  if (const LinkFaults* faults = link(to, from)) {
    if (rng.uniform(0, 999) < faults->loss_per_mille) {
      co_return RpcResult::failure(RpcError::kDropped);
    }
    delay += draw_delay(rng, *faults);
  }
  if (delay > Duration::zero()) {
    // labrpc's time.AfterFunc: the reply is delivered late, with no further check of the
    // server. If the caller gives up first, the delivery is dropped with this frame.
    const End waited = co_await Wait(*this, loop.now() + delay, deadline);
    if (waited != End::kReached) co_return Wait::failure(waited);
  }
  if (frames_ && !cross_wire(*slot->reply, link(to, from))) {
    co_return RpcResult::failure(RpcError::kDropped);
  }
  // Reply bytes count only when a reply is delivered.
  total_bytes_ += encoded_size(*slot->reply);
  co_return RpcResult::success(std::move(*slot->reply));
}

// labrpc Server.dispatch: count the invocation, run the handler, hand back its reply.
Task<void> SimNetwork::dispatch(SimNetwork* net, Server* server, NodeId from, NodeId to,
                                Message request, std::shared_ptr<Dispatch> slot) {
  // Deleted between the spawn and this first run: its handler object may already be gone,
  // so it does not run (labrpc would run it, and then fail the call as we do).
  if (!server->deleted) {
    ++server->rpc_count;
    std::optional<Message> seen;
    if (net->tap_) {
      net->tap_(from, to, request, nullptr);
      seen.emplace(request);
    }
    try {
      slot->reply.emplace(co_await server->handler->handle(from, std::move(request)));
      if (seen && !server->deleted) net->tap_(from, to, *seen, &*slot->reply);
    } catch (const Cancelled&) {
      // Cancelled by crash() or close(): no reply.
    } catch (...) {
      // A handler bug. The call fails; close() reports it.
      if (!net->handler_error_) net->handler_error_ = std::current_exception();
    }
  }
  slot->finish();
}

Task<void> SimNetwork::close() {
  closed_ = true;
  // Wakes every waiting call (each then returns kClosed) and cancels every server's handlers.
  closing_.request_cancel();
  co_await calls_idle_.wait_uncancellable();
  for (std::size_t i = 0; i < servers_.size(); ++i) co_await servers_[i]->handlers.join();
  if (handler_error_) std::rethrow_exception(std::exchange(handler_error_, nullptr));
}

}  // namespace uraft
