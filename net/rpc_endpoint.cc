#include "net/rpc_endpoint.h"

#include <exception>
#include <string>
#include <utility>

#include "core/assert.h"
#include "core/loop.h"

namespace uraft {

TransportRpc::TransportRpc(Transport& transport) : transport_(transport) {
  scope_.spawn(receive_loop(this));
}

TransportRpc::~TransportRpc() {
  URAFT_ASSERT(closed_);
  URAFT_ASSERT(pending_.empty());
}

// The race of a call's reply against its deadline, as one awaiter: when_any(reply, timer)
// with the loser withdrawn, without when_any's two child tasks, whose allocations and three
// extra loop turns per call cost a tenth of the ping-pong latency and two thirds of the
// pipelined throughput (docs/transports.md has the numbers). Whoever comes first (reply,
// close(), cancellation, or the timer) schedules the call; wake() is a no-op once the timer
// has fired, since the loop has scheduled the call then.
class TransportRpc::ReplyWait {
 public:
  ReplyWait(PendingCall& pending, TimePoint deadline) : pending_(pending) {
    pending_.deadline.deadline = deadline;
  }
  ReplyWait(const ReplyWait&) = delete;
  ReplyWait& operator=(const ReplyWait&) = delete;
  ~ReplyWait() { Loop::current().disarm(pending_.deadline); }

  bool await_ready() const noexcept { return pending_.reply.has_value() || pending_.closed; }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    pending_.deadline.waiter = h;
    if (!token_of(h).register_callback(pending_.cancel, &TransportRpc::on_cancel, &pending_)) {
      pending_.cancelled = true;
      return false;
    }
    Loop::current().arm(pending_.deadline);
    pending_.waiting = true;
    return true;
  }
  void await_resume() {
    pending_.waiting = false;
    pending_.cancel.reset();
    if (pending_.cancelled) throw Cancelled{};
  }

 private:
  PendingCall& pending_;
};

void TransportRpc::wake(PendingCall& pending) noexcept {
  if (!pending.waiting || !pending.deadline.armed()) return;
  Loop& loop = Loop::current();
  loop.disarm(pending.deadline);
  loop.schedule(pending.deadline.waiter);
}

void TransportRpc::on_cancel(void* pending) noexcept {
  auto* p = static_cast<PendingCall*>(pending);
  p->cancelled = true;
  wake(*p);
}

Task<RpcResult> TransportRpc::call(NodeId peer, Message request, Duration timeout) {
  URAFT_ASSERT(!is_reply(request));  // Replies are sent by handlers, never called.
  ++counters_.calls;
  if (closed_) {
    ++counters_.calls_closed;
    co_return RpcResult::failure(RpcError::kClosed);
  }
  const std::uint64_t id = next_request_id_++;
  PendingCall pending;
  pending.peer = peer;
  pending_.emplace(id, &pending);
  // Whatever ends this call (reply, timeout, cancellation), the id is forgotten with it.
  struct Forget {
    TransportRpc* self;
    std::uint64_t id;
    ~Forget() { self->pending_.erase(id); }
  } forget{this, id};

  if (!transport_.send(peer, id, request)) {
    ++counters_.calls_unreachable;
    co_return RpcResult::failure(RpcError::kUnreachable);
  }
  co_await ReplyWait(pending, Loop::current().now() + timeout);
  if (pending.reply) {
    ++counters_.calls_ok;
    co_return RpcResult::success(std::move(*pending.reply));
  }
  if (pending.closed) {
    ++counters_.calls_closed;
    co_return RpcResult::failure(RpcError::kClosed);
  }
  ++counters_.calls_timeout;
  co_return RpcResult::failure(RpcError::kTimeout);
}

void TransportRpc::deliver_reply(Envelope reply) {
  const auto it = pending_.find(reply.request_id);
  if (it == pending_.end()) {
    ++counters_.replies_late;
    return;
  }
  PendingCall* pending = it->second;
  if (pending->peer != reply.from) {
    ++counters_.replies_wrong_peer;
    return;
  }
  URAFT_ASSERT(!pending->reply.has_value());  // The first reply unlinks the call.
  pending->reply.emplace(std::move(reply.message));
  wake(*pending);
  pending_.erase(it);  // A duplicate of this reply is now late.
}

void TransportRpc::dispatch_request(Envelope request) {
  if (handler_ == nullptr || handlers_inflight_ >= kHandlersInflightMax) {
    ++counters_.requests_refused;
    return;
  }
  ++handlers_inflight_;
  scope_.spawn(serve_request(this, std::move(request)));
}

Task<void> TransportRpc::receive_loop(TransportRpc* self) {
  for (;;) {
    std::optional<Envelope> envelope = co_await self->transport_.receive();
    if (!envelope) co_return;  // The transport closed.
    if (is_reply(envelope->message)) {
      self->deliver_reply(std::move(*envelope));
    } else {
      self->dispatch_request(std::move(*envelope));
    }
  }
}

Task<void> TransportRpc::serve_request(TransportRpc* self, Envelope request) {
  struct Done {
    TransportRpc* self;
    ~Done() { --self->handlers_inflight_; }
  } done{self};
  RpcHandler* handler = self->handler_;
  if (handler == nullptr) {  // serve(nullptr) since the request was dispatched.
    ++self->counters_.requests_refused;
    co_return;
  }
  const NodeId from = request.from;
  const std::uint64_t id = request.request_id;
  std::optional<Message> reply;
  try {
    reply.emplace(co_await handler->handle(from, std::move(request.message)));
  } catch (const Cancelled&) {
    throw;
  } catch (...) {
    // A handler's failure is its request's: the caller times out, the endpoint serves on.
    ++self->counters_.handler_errors;
    co_return;
  }
  URAFT_ASSERT(is_reply(*reply));  // A handler answers with a reply type.
  if (self->transport_.send(from, id, *reply)) {
    ++self->counters_.requests_served;
  } else {
    ++self->counters_.replies_unsent;
  }
}

Task<void> TransportRpc::close() {
  if (closed_) co_return;
  closed_ = true;
  for (auto& [id, pending] : pending_) {
    pending->closed = true;
    wake(*pending);
  }
  pending_.clear();
  co_await scope_.close();
}

}  // namespace uraft
