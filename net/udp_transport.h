// UdpTransport: one UDP socket per node; one frame per datagram. A datagram's sender is known
// by its source address (each node sends from the socket it listens on), so the frame needs
// no sender field. Sends go straight to io_uring as sendmsg operations (no queue of our own:
// the kernel takes a datagram at once or refuses it); one multishot recvmsg with a ring of
// provided buffers receives (a few single-shot ones on kernels without it).
// See docs/transports.md.
#pragma once

#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "core/channel.h"
#include "core/event.h"
#include "core/scope.h"
#include "core/uring_backend.h"
#include "net/transport.h"

namespace uraft {

// The largest datagram IPv4 carries: 65535 bytes less the IP (20) and UDP (8) headers.
inline constexpr std::size_t kUdpDatagramBytesMax = 65507;
// The largest message payload (codec bytes) one UDP frame carries. Larger messages are
// refused by send() and counted (dropped_oversized); Raft's AppendEntries batches and snapshot
// chunks must stay within it when running over UDP.
inline constexpr std::size_t kUdpPayloadBytesMax = kUdpDatagramBytesMax - kFrameHeaderBytes;
static_assert(kUdpPayloadBytesMax < kFramePayloadBytesMax);
// Datagrams handed to the kernel whose completion has not arrived: the UDP send bound. Sends
// use MSG_DONTWAIT, so each completes at once (sent, or refused when the socket buffer is
// full); the bound only matters for bursts within one loop turn.
inline constexpr std::size_t kUdpSendSlotsMax = 256;
// The multishot recvmsg's buffers: datagrams it may hold before the receiver task takes
// them (then it pauses, and the socket's own buffer holds the rest). Each fits any datagram.
inline constexpr unsigned kUdpReceiveBuffers = 32;
// Without multishot receive (kernels before 6.0): single-shot recvmsg operations kept
// outstanding, each with its own buffer. More than a few make every datagram wake them all.
inline constexpr std::size_t kUdpReceivesOutstanding = 4;
// Asked for SO_RCVBUF/SO_SNDBUF (the kernel caps it at net.core.[rw]mem_max).
inline constexpr int kUdpSocketBufferBytes = 4 << 20;

class UdpTransport final : public Transport {
 public:
  // Binds the socket and starts the receivers. Call on an io_uring loop's thread, from a
  // task. Returns null with `error` set if the socket cannot be set up (or there is no ring).
  static std::unique_ptr<UdpTransport> open(TransportOptions options, std::error_code& error);

  UdpTransport(const UdpTransport&) = delete;
  UdpTransport& operator=(const UdpTransport&) = delete;
  ~UdpTransport() override;  // close() must have been awaited.

  NodeId self() const noexcept override { return options_.self; }
  std::uint64_t cluster_id() const noexcept override { return options_.cluster_id; }
  SocketAddress local_address() const noexcept override { return local_; }
  void set_peer(NodeId peer, SocketAddress address) override;
  [[nodiscard]] bool send(NodeId peer, std::uint64_t request_id, const Message& m) override;
  Task<std::optional<Envelope>> receive() override;
  Task<void> close() override;
  const TransportCounters& counters() const noexcept override { return counters_; }

 private:
  // One datagram in the kernel's hands. Owned by slots_; on free_slots_ when idle.
  struct SendSlot : UringOp {
    UdpTransport* owner = nullptr;
    std::string datagram;  // Reused: keeps its capacity.
    sockaddr_in to{};
    iovec iov{};
    msghdr msg{};
  };

  UdpTransport(TransportOptions options, int fd, SocketAddress local, UringBackend* uring);
  SendSlot* take_slot();
  void accept_datagram(std::span<const std::byte> bytes, const sockaddr_in& from, int flags);
  void accept_recvmsg_out(std::span<std::byte> buffer, const msghdr& layout);
  void log(std::uint64_t count, const std::string& text) const;
  static void on_sent(UringOp* op, int res, std::uint32_t flags) noexcept;
  static Task<void> receive_multishot(UdpTransport* self);
  static Task<void> receive_single_shot(UdpTransport* self);

  TransportOptions options_;
  int fd_;
  SocketAddress local_;
  UringBackend* uring_;
  std::unordered_map<NodeId, SocketAddress> peers_;
  std::unordered_map<std::uint64_t, NodeId> senders_;  // SocketAddress::key() -> node.
  std::vector<std::unique_ptr<SendSlot>> slots_;
  std::vector<SendSlot*> free_slots_;  // Reserved to kUdpSendSlotsMax: on_sent never allocates.
  std::size_t sends_inflight_ = 0;
  Event sends_idle_;  // Set while sends_inflight_ == 0.
  Channel<Envelope> inbox_;
  std::unique_ptr<detail::BufferRing> ring_;  // The multishot receive's; null without one.
  Scope scope_;  // The receivers.
  TransportCounters counters_;
  bool closed_ = false;
};

}  // namespace uraft
