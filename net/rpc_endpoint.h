// TransportRpc: the RpcEndpoint of one node over any Transport. A call gets a fresh request
// id, waits in a pending-call table for the reply with that id or for its deadline, whichever
// comes first (the loser is withdrawn), and forgets the id when it returns, so a late or
// duplicate reply finds nothing and is dropped and counted. Incoming requests run as tasks
// in the endpoint's Scope; each reply goes back with its request's id.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "core/clock.h"
#include "core/loop.h"
#include "core/scope.h"
#include "core/task.h"
#include "net/rpc.h"
#include "net/transport.h"

namespace uraft {

// Requests served at once; beyond it a request is dropped (and counted) unanswered: its
// caller times out and Raft retries. Bounds the frames and replies a flood can hold.
inline constexpr std::size_t kHandlersInflightMax = 1024;

// True for the message types that answer a request (they go to the pending-call table).
[[nodiscard]] inline bool is_reply(const Message& m) noexcept {
  return std::holds_alternative<RequestVoteReply>(m) ||
         std::holds_alternative<AppendEntriesReply>(m) ||
         std::holds_alternative<InstallSnapshotReply>(m) ||
         std::holds_alternative<TimeoutNowReply>(m) ||
         std::holds_alternative<ClientReply>(m);
}

struct RpcCounters {
  std::uint64_t calls = 0;
  std::uint64_t calls_ok = 0;
  std::uint64_t calls_timeout = 0;
  std::uint64_t calls_unreachable = 0;  // The transport refused the request at once.
  std::uint64_t calls_closed = 0;
  std::uint64_t replies_late = 0;        // No call waits for this id (timed out, or never was).
  std::uint64_t replies_wrong_peer = 0;  // The id's call went to another peer.
  std::uint64_t requests_served = 0;
  std::uint64_t requests_refused = 0;    // No handler, or kHandlersInflightMax reached.
  std::uint64_t handler_errors = 0;      // A handler threw (anything but Cancelled).
  std::uint64_t replies_unsent = 0;      // The transport refused a reply.
};

class TransportRpc final : public RpcEndpoint {
 public:
  // Starts the receive loop: construct on the loop's thread, from a task. `transport` must
  // outlive this endpoint.
  explicit TransportRpc(Transport& transport);
  TransportRpc(const TransportRpc&) = delete;
  TransportRpc& operator=(const TransportRpc&) = delete;
  ~TransportRpc() override;  // close() must have been awaited.

  NodeId self() const noexcept override { return transport_.self(); }
  Task<RpcResult> call(NodeId peer, Message request, Duration timeout) override;
  void serve(RpcHandler* handler) override { handler_ = handler; }

  // Fails waiting calls with kClosed, cancels the receive loop and every handler, and joins
  // them. Does not close the transport (its owner does). Idempotent.
  Task<void> close();

  const RpcCounters& counters() const noexcept { return counters_; }
  std::size_t pending_calls() const noexcept { return pending_.size(); }
  std::size_t handlers_inflight() const noexcept { return handlers_inflight_; }

 private:
  // Lives in the frame of the call() waiting for it; the table points at it while it waits.
  struct PendingCall {
    NodeId peer;
    std::optional<Message> reply;
    bool closed = false;     // close() ended the wait.
    bool cancelled = false;  // The calling task was cancelled.
    bool waiting = false;    // The call is suspended in ReplyWait.
    TimerNode deadline;      // Armed while waiting; its waiter is the call.
    CancelCallback cancel;
  };
  class ReplyWait;

  // Resumes a waiting call now (reply, close, cancellation) and withdraws its timer; a no-op
  // once the timer has fired, since the loop has already scheduled the call then.
  static void wake(PendingCall& pending) noexcept;
  static void on_cancel(void* pending) noexcept;
  static Task<void> receive_loop(TransportRpc* self);
  static Task<void> serve_request(TransportRpc* self, Envelope request);
  void deliver_reply(Envelope reply);
  void dispatch_request(Envelope request);

  Transport& transport_;
  RpcHandler* handler_ = nullptr;
  std::uint64_t next_request_id_ = 1;  // 0 means "no request id" on the wire.
  std::unordered_map<std::uint64_t, PendingCall*> pending_;
  std::size_t handlers_inflight_ = 0;
  RpcCounters counters_;
  Scope scope_;  // The receive loop and the handlers.
  bool closed_ = false;
};

}  // namespace uraft
