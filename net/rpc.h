// RPC as Raft and uraftd see the network: call a peer with a request and get its reply or a
// typed error; serve incoming requests with one handler per node. SimNetwork (the labrpc
// model) and the real transports (UDP, TCP) all provide an RpcEndpoint per node.
#pragma once

#include <optional>
#include <string_view>

#include "core/clock.h"
#include "core/task.h"
#include "net/message.h"
#include "net/types.h"

namespace uraft {

enum class RpcError : std::uint8_t {
  kTimeout,      // No reply within the caller's timeout.
  kUnreachable,  // The peer is unknown, disconnected, or the connection failed.
  kDropped,      // The network lost the request or the reply (simulated networks say so).
  kClosed,       // This endpoint was closed.
};

inline std::string_view to_string(RpcError e) {
  switch (e) {
    case RpcError::kTimeout: return "timeout";
    case RpcError::kUnreachable: return "unreachable";
    case RpcError::kDropped: return "dropped";
    case RpcError::kClosed: return "closed";
  }
  return "unknown";
}

struct [[nodiscard]] RpcResult {
  std::optional<Message> reply;  // Set iff ok().
  RpcError error = RpcError::kTimeout;

  bool ok() const noexcept { return reply.has_value(); }
  static RpcResult success(Message m) { return RpcResult{std::move(m), RpcError::kTimeout}; }
  static RpcResult failure(RpcError e) { return RpcResult{std::nullopt, e}; }
};

// Serves requests for one node. Each request runs as its own task; the returned message is
// the reply (e.g. RequestVoteArgs -> RequestVoteReply).
class RpcHandler {
 public:
  virtual ~RpcHandler() = default;
  virtual Task<Message> handle(NodeId from, Message request) = 0;
};

class RpcEndpoint {
 public:
  virtual ~RpcEndpoint() = default;
  virtual NodeId self() const noexcept = 0;
  // Sends `request` to `peer` and waits for its reply, at most `timeout`. Late or duplicate
  // replies are dropped. Throws Cancelled if the calling task is cancelled.
  virtual Task<RpcResult> call(NodeId peer, Message request, Duration timeout) = 0;
  // Installs the handler for incoming requests (null: refuse them). Set before traffic starts.
  virtual void serve(RpcHandler* handler) = 0;
};

}  // namespace uraft
