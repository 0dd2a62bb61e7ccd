// TcpTransport: one TCP connection per pair of nodes, carrying frames both ways. The node
// with the lower id dials (at once, and again with capped exponential backoff and jitter
// whenever the connection fails); the higher id accepts. Each side opens with a hello that
// names its cluster and node. Per peer, send() appends encoded frames to a bounded queue that
// one writer drains into a single send() per loop turn, so a turn's frames coalesce. A reader
// reassembles frames from a reusable buffer; bad input closes that connection only.
// See docs/transports.md for the decisions and their reasons.
#pragma once

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
#include "core/io.h"
#include "core/scope.h"
#include "net/transport.h"

namespace uraft {

// The hello that opens a connection in each direction (integers little-endian):
//   magic "URHI"[4] version:u8 reserved[3] cluster_id:u64 node_id:u32 crc32c:u32
// The CRC covers the 20 bytes before it.
inline constexpr std::size_t kTcpHelloBytes = 24;
// A connection must complete its hello exchange within this, or it is closed.
inline constexpr Duration kTcpHandshakeTimeout = std::chrono::seconds(5);
// A connect attempt that has not completed by then counts as failed (a black-holed address).
inline constexpr Duration kTcpConnectTimeout = std::chrono::seconds(2);
// Accepted connections still in their hello exchange; more are closed at once, so a flood of
// idle connections cannot exhaust descriptors.
inline constexpr std::size_t kTcpHandshakesPendingMax = 16;
// A reader's buffer; it grows to hold one larger frame (up to kFrameBytesMax) and shrinks
// back once that frame is consumed.
inline constexpr std::size_t kTcpReadBufferBytes = std::size_t{64} << 10;
// Each connection's multishot receive fills buffers from its own ring of this many, of this
// size. A reader that stops (its receive queue is full) holds them all within 256 KiB; the
// kernel then stops reading that socket, and TCP's window pushes back on the sender.
inline constexpr unsigned kTcpReceiveBuffers = 16;
inline constexpr std::size_t kTcpReceiveBufferBytes = std::size_t{16} << 10;

// The hello a node sends (public for tests and tools that speak the protocol).
[[nodiscard]] std::string tcp_hello(std::uint64_t cluster_id, NodeId node);

class TcpTransport final : public Transport {
 public:
  // Listens, starts accepting, and starts dialing every peer with a higher id. Call on an
  // io_uring loop's thread, from a task. Null with `error` set if the socket cannot be set up.
  static std::unique_ptr<TcpTransport> open(TransportOptions options, std::error_code& error);

  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;
  ~TcpTransport() override;  // close() must have been awaited.

  NodeId self() const noexcept override { return options_.self; }
  std::uint64_t cluster_id() const noexcept override { return options_.cluster_id; }
  SocketAddress local_address() const noexcept override { return local_; }
  void set_peer(NodeId peer, SocketAddress address) override;
  [[nodiscard]] bool send(NodeId peer, std::uint64_t request_id, const Message& m) override;
  Task<std::optional<Envelope>> receive() override;
  Task<void> close() override;
  const TransportCounters& counters() const noexcept override { return counters_; }

  // Whether a connection to `peer` has completed its handshake and is live.
  bool connected(NodeId peer) const;
  // Frames waiting in `peer`'s send queue (0 for an unknown peer).
  std::size_t queued_frames(NodeId peer) const;

 private:
  struct Connection;

  struct Peer {
    NodeId id;
    SocketAddress address;
    bool dials = false;  // This side dials it (our id is lower).
    // Encoded frames not yet handed to a writer. Appended by send(); swapped out whole by
    // the live connection's writer.
    std::string queue;
    std::size_t queue_frames = 0;
    Connection* connection = nullptr;  // The live connection; set/cleared by run_connection.
    Event wake;                        // Set when the queue gains frames.
  };

  // Lives in the frame of the task that owns the socket (dial_loop or serve_accepted).
  struct Connection {
    int fd = -1;
    Peer* peer = nullptr;
    Scope* io = nullptr;  // Its reader and writer, while they run.
    std::vector<std::byte> in;
    std::size_t in_begin = 0;  // Unconsumed bytes are in[in_begin, in_end).
    std::size_t in_end = 0;
    std::size_t need = kFrameHeaderBytes;  // Bytes from in_begin the next frame needs.
  };

  TcpTransport(TransportOptions options, int listen_fd, SocketAddress local);
  Peer* find(NodeId id) const;
  Peer* check_hello(Connection& c, std::optional<NodeId> expected);
  void drop_queue(Peer& peer);
  Duration backoff(unsigned failures);
  void log(std::uint64_t count, const std::string& text) const;

  static Task<void> accept_loop(TcpTransport* t);
  static Task<void> serve_accepted(TcpTransport* t, int fd);
  static Task<void> dial_loop(TcpTransport* t, Peer* peer);
  static Task<void> run_connection(TcpTransport* t, Connection* c, Peer* peer);
  static Task<void> read_loop(TcpTransport* t, Connection* c);
  static Task<bool> read_multishot(TcpTransport* t, Connection* c, detail::BufferRing* ring);
  static Task<void> read_single_shot(TcpTransport* t, Connection* c);
  static Task<bool> deliver_frames(TcpTransport* t, Connection* c);
  static void make_room(Connection* c, std::size_t need);
  static Task<void> write_loop(TcpTransport* t, Connection* c);
  static Task<bool> read_at_least(Connection* c, std::size_t n);
  static Task<bool> read_hello(Connection* c);

  TransportOptions options_;
  int listen_fd_;
  SocketAddress local_;
  std::unordered_map<NodeId, std::unique_ptr<Peer>> peers_;
  std::size_t handshakes_pending_ = 0;
  Channel<Envelope> inbox_;
  Scope scope_;  // Accept loop, dial loops, accepted connections.
  TransportCounters counters_;
  bool multishot_;  // Receive with multishot recv; cleared if the kernel cannot.
  bool closed_ = false;
};

}  // namespace uraft
